/** A fresh client_request_id for a prompt (idempotent retries reuse the same one). */
export function requestId(): string {
  if (typeof crypto !== 'undefined' && 'randomUUID' in crypto) return `web-${crypto.randomUUID()}`;
  return `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

/**
 * One id per request *content*, kept until that request succeeds: pressing the button again after
 * an error (or a lost answer) resends the same id, so the server returns what the first attempt
 * made instead of making it twice; changed content, or a success, gets a new id.
 */
export class RetryId {
  private content: string | null = null;
  private id = '';

  /** The id for a request with this content. */
  for(content: string): string {
    if (content !== this.content) {
      this.content = content;
      this.id = requestId();
    }
    return this.id;
  }

  /** The request succeeded: the next one is a new request even with the same content. */
  done(): void {
    this.content = null;
  }
}
