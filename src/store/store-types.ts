/** The values the store keeps, apart from the store itself: its lanes read them too. */

export type CursorValue =
  | string
  | number
  | boolean
  | null
  | { readonly [key: string]: CursorValue }
  | readonly CursorValue[];

/** One punch waiting in the outbox, in enqueue (seq) order. */
export interface OutboxEntry {
  readonly seq: number;
  readonly id: string;
  readonly sourceId: string;
  readonly body: string;
  readonly enqueuedAt: number;
  readonly attempts: number;
}
