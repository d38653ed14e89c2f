// Package blob is the homeserver's blob service: resumable upload and ranged
// download of opaque ciphertexts over plain HTTP under /v1/blobs/.
//
// The service never sees plaintext: clients encrypt files before upload
// (package filecrypt) and share the capability id, key and hash inside
// end-to-end encrypted messages. A blob's [ID] is 32 random bytes, unrelated
// to the account that uploaded it; whoever knows it can download the blob.
//
// Protocol (every error is JSON {"error": code, "message": sentence}):
//
//	POST   /v1/blobs            Upload-Length: N, Authorization: Bearer T
//	                            → 201 {"id","size","offset","expires"}
//	HEAD   /v1/blobs/{id}       → Upload-Offset, Upload-Length, Upload-Complete (?0/?1)
//	PATCH  /v1/blobs/{id}       Upload-Offset: O, body = bytes from O (owner only)
//	                            → 204 Upload-Offset; 409 + Upload-Offset if O is wrong
//	POST   /v1/blobs/{id}/finish Upload-CRC64: 16 hex digits, CRC-64/NVME of the whole blob (owner only)
//	DELETE /v1/blobs/{id}       (owner only)
//	GET    /v1/blobs/{id}       finished blobs only; one Range ("bytes=a-b", "a-", "-n") supported
//
// One PATCH may carry the whole rest of a blob: the service makes what it
// received durable and records the new offset every [CheckpointSize] bytes
// and at the end of the request, and HEAD reports only recorded offsets, so
// an offset a client is told about survives a crash of the server.
//
// [NewHandler] builds the service from a [Config], a storage [Backend]
// ([NewLocal] for the data folder, [NewS3] for S3-compatible storage), a
// [MetaStore] (bookkeeping: owner, sizes, offsets, times; [StoreMeta] keeps
// it in the homeserver's database, shared by all its processes, and
// [OpenFileMeta] in JSON files for a process without one) and an
// [Authorizer] that maps a bearer
// token to an account ([Tokens] mints and checks HMAC tokens that a device
// session can hand out). [Handler.Sweep] deletes expired blobs.
package blob
