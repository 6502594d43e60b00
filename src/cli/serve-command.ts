// `gmemkit serve`: the model as a JSON-RPC 2.0 server for VMM tests in any language (the
// protocol is docs/server.md). Over stdin/stdout by default, or a Unix socket with --socket.
import { Recorder } from '../server/record.js';
import { serveSocket, serveStream } from '../server/transport.js';
import { EXIT, type CommandSpec, type Parsed } from './args.js';
import { UsageError } from './usage.js';

export const SERVE_SPEC: CommandSpec = {
  name: 'serve',
  brief: 'the model as a JSON-RPC 2.0 server (the fake kernel for VMM tests in any language)',
  synopsis: 'serve [--socket PATH] [--record FILE]',
  summary: 'Serve the model as JSON-RPC 2.0, one message per line: a method is a scenario op, its params\n'
    + "the step's fields; the result is the step's outcome as 'run --json' prints it. Over stdin/stdout,\n"
    + 'or a Unix socket (each connection its own world).',
  options: [
    { name: 'socket', arg: 'PATH', kind: { type: 'string' }, defaultText: 'stdin/stdout', help: 'listen on a Unix socket at PATH (a stale socket there is replaced)' },
    { name: 'record', arg: 'FILE', kind: { type: 'string' }, help: "write the session as a scenario file for 'gmemkit run'\n(with --socket: FILE-N.yaml for connection N)" },
    { name: 'no-invariants', kind: { type: 'bool' }, help: 'do not check invariants I1-I11 after every step' },
  ],
  notes: 'Methods besides the ops: session, subscribe, guest_boot, vcpu_run (docs/server.md).\nThe server runs until its input ends (stdin) or it is signalled (--socket).',
};

export async function serveCommand(p: Parsed): Promise<number> {
  const socket = p.string('socket');
  const record = p.string('record');
  const invariants = !p.bool('no-invariants');
  if (socket === undefined) {
    let recorder: Recorder | undefined;
    try { recorder = record ? new Recorder(record) : undefined; } catch (e) {
      throw new UsageError(`--record: cannot write ${record}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    await serveStream(process.stdin, process.stdout, { ...(recorder ? { record: recorder } : {}), invariants });
    return EXIT.OK;
  }
  let server;
  try {
    server = await serveSocket(socket, { ...(record ? { record } : {}), invariants });
  } catch (e) {
    throw new UsageError(`--socket: cannot listen on ${socket}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  process.stderr.write(`gmemkit serve: listening on ${socket}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => server.close(() => resolve());
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return EXIT.OK;
}
