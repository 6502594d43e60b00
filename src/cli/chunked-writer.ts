// Buffered line output for reports printed as they are made: lines are joined into pieces of
// about 64 KiB and handed to `write` (stdout), so a run of 100k steps makes tens of writes,
// not one per step, and never holds its whole report.
const CHUNK = 64 * 1024;

export class ChunkedWriter {
  private buffer = '';

  constructor(private readonly write: (text: string) => void) {}

  line(text: string): void {
    this.buffer += `${text}\n`;
    if (this.buffer.length >= CHUNK) this.flush();
  }

  flush(): void {
    if (this.buffer) this.write(this.buffer);
    this.buffer = '';
  }
}
