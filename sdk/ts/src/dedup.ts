// IdWindow remembers the last n message ids delivered, to drop a publisher's duplicate records
// (same message id at another position, R18). Memory is bounded: a ring of n ids and a set.
export class IdWindow {
  private readonly ring: string[] = [];
  private next = 0; // ring index the next id overwrites once full
  private readonly set = new Set<string>();

  /** n <= 0 remembers nothing (dedup by id off). */
  constructor(private readonly n: number) {}

  /** add records id and reports whether it is new. Empty ids are always new. */
  add(id: string): boolean {
    if (id === "" || this.n <= 0) {
      return true;
    }
    if (this.set.has(id)) {
      return false;
    }
    if (this.ring.length < this.n) {
      this.ring.push(id);
    } else {
      const old = this.ring[this.next];
      if (old !== undefined) {
        this.set.delete(old);
      }
      this.ring[this.next] = id;
      this.next = (this.next + 1) % this.n;
    }
    this.set.add(id);
    return true;
  }
}
