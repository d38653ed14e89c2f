package server

import (
	"context"

	"github.com/parley-im/parley/wire"
)

// handlerFunc handles one authenticated request.
type handlerFunc func(ctx context.Context) (*wire.Response, error)

// handlerFor returns the handler of an authenticated request kind, or nil
// for a kind this server does not know.
func (s *Server) handlerFor(ss *session, id uint64, req *wire.Request) handlerFunc {
	dev := ss.device
	switch r := req.GetKind().(type) {
	case *wire.Request_Lookup:
		return func(ctx context.Context) (*wire.Response, error) { return s.handleLookup(ctx, dev, r.Lookup) }
	case *wire.Request_ClaimUsername:
		return func(ctx context.Context) (*wire.Response, error) {
			return s.handleClaimUsername(ctx, dev, r.ClaimUsername)
		}
	case *wire.Request_ReleaseUsername:
		return func(ctx context.Context) (*wire.Response, error) {
			return s.handleReleaseUsername(ctx, dev, r.ReleaseUsername)
		}
	case *wire.Request_UploadKeyPackages:
		return func(ctx context.Context) (*wire.Response, error) {
			return s.handleUpload(ctx, dev, r.UploadKeyPackages)
		}
	case *wire.Request_ClaimKeyPackages:
		return func(ctx context.Context) (*wire.Response, error) { return s.handleClaim(ctx, dev, r.ClaimKeyPackages) }
	case *wire.Request_CountKeyPackages:
		return func(ctx context.Context) (*wire.Response, error) { return s.handleCount(ctx, dev) }
	case *wire.Request_CreateGroup:
		return func(ctx context.Context) (*wire.Response, error) { return s.handleCreateGroup(ctx, dev, r.CreateGroup) }
	case *wire.Request_Commit:
		return func(ctx context.Context) (*wire.Response, error) { return s.handleCommit(ctx, dev, r.Commit) }
	case *wire.Request_Send:
		return func(ctx context.Context) (*wire.Response, error) { return s.handleSend(ctx, dev, r.Send) }
	case *wire.Request_MailboxSend:
		return func(ctx context.Context) (*wire.Response, error) { return s.handleMailboxSend(ctx, dev, r.MailboxSend) }
	case *wire.Request_Fetch:
		return func(ctx context.Context) (*wire.Response, error) { return s.handleFetch(ctx, dev, r.Fetch) }
	case *wire.Request_RevokeDevice:
		return func(ctx context.Context) (*wire.Response, error) { return s.handleRevoke(ctx, dev, r.RevokeDevice) }
	case *wire.Request_AddDevice:
		return func(ctx context.Context) (*wire.Response, error) { return s.handleAddDevice(ctx, dev, r.AddDevice) }
	case *wire.Request_DeleteAccount:
		return func(ctx context.Context) (*wire.Response, error) {
			return s.handleDeleteAccount(ctx, ss, id, r.DeleteAccount)
		}
	}
	return nil
}
