/**
 * A reason the controller cannot start that the operator can act on (a port
 * in use, a state folder held by another controller, a missing CA root). The
 * CLI prints its message as one line and exits 1; anything else is a bug.
 */
export class StartupError extends Error {}
