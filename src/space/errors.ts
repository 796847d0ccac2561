/** Domain errors carry a stable code; the transport maps codes to HTTP statuses and close codes. */
export type DomainErrorCode = 'INVALID_TRANSITION' | 'SPACE_ENDED' | 'NOT_A_LISTENER' | 'NOT_REQUESTED' | 'BAD_EMOJI';

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}
