// Package crossimpl tests Parley's interop server against an independent
// MLS implementation, ts-mls (TypeScript, from npm), run by node through
// peer.mjs. The test needs node and npm and skips without them; the npm
// packages are pinned by package-lock.json and installed with `npm ci`.
package crossimpl
