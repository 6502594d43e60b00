// The error type every subcommand throws for bad command-line input: main() prints its message
// and exits 2, never a stack trace.
export class UsageError extends Error {}
