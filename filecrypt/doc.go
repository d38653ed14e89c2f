// Package filecrypt encrypts files on the client before they leave the
// device, in a streaming format that needs constant memory whatever the file
// size.
//
// Each file gets its own random [Key] ([NewKey]). The ciphertext is a short
// header followed by chunks of [ChunkSize] plaintext bytes, each sealed with
// AES-256-GCM under a nonce made of the chunk counter and a last-chunk flag
// (the STREAM construction, as in age's internal/stream). Truncation,
// reordering, splicing chunks from another position and trailing data are all
// detected; a reader never releases plaintext that has not been
// authenticated.
//
// Use [NewEncrypter] (an io.WriteCloser) or [NewEncryptingReader] (an
// io.Reader yielding ciphertext) to encrypt, and [NewDecrypter] to decrypt
// from the start or [NewChunkDecrypter] to decrypt from a chunk index (for a
// resumed download of the ciphertext from [ChunkOffset]). Pipelines that
// know the file's size and want no copies use [ChunkSealer], which seals
// chunks in place in slots of [SealedChunkSize] bytes, and [ChunkOpener],
// which opens them one by one into a buffer of the caller's; they produce
// and check the same format. Encryption is
// deterministic given the key, so an interrupted upload can be resumed by
// encrypting again and skipping what the server already holds. Never encrypt
// two different plaintexts with one key.
//
// A [FileRef] carries what a recipient needs (blob id, key, plaintext
// SHA-256, size, name, media type) inside an end-to-end encrypted message;
// [FileRef.MarshalBinary] and [ParseFileRef] give it a strict binary form.
//
// The subpackage transfer uploads and downloads files to and from the blob
// service, resumably.
package filecrypt
