package wire

// ErrorHeader is the HTTP header of a refused WebSocket upgrade (status 429
// or 503, before any frame is exchanged) that carries the protocol error
// code's name, for example "TOO_MANY_CONNECTIONS". The response body is the
// error's sentence and Retry-After says, in seconds, when to try again.
const ErrorHeader = "Parley-Error"
