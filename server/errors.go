package server

import (
	"errors"
	"log/slog"

	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/wire"
)

// wireError turns a handler error into the Error sent to the client. A
// *wire.Error passes through; store sentinels map to their codes; anything
// else is an internal fault, logged (without content) and answered with
// INTERNAL.
func (s *Server) wireError(log *slog.Logger, kind string, err error) *wire.Error {
	var we *wire.Error
	if errors.As(err, &we) {
		return we
	}
	var ee *store.EpochError
	if errors.As(err, &ee) {
		if ee.Stale {
			e := wire.NewError(wire.ErrorCode_EPOCH_TOO_OLD, "the group is at epoch %d; this epoch is past its grace period: catch up and encrypt again", ee.Current)
			e.CurrentEpoch = ee.Current
			return e
		}
		e := wire.NewError(wire.ErrorCode_EPOCH_CONFLICT, "the group is at epoch %d: fetch the commits you are missing, then retry", ee.Current)
		e.CurrentEpoch = ee.Current
		return e
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return wire.NewError(wire.ErrorCode_NOT_FOUND, "not found")
	case errors.Is(err, store.ErrExists):
		return wire.NewError(wire.ErrorCode_ALREADY_EXISTS, "it already exists")
	case errors.Is(err, store.ErrQueueFull):
		return wire.NewError(wire.ErrorCode_QUEUE_FULL, "the recipient's mailbox is full; retry later")
	case errors.Is(err, store.ErrRevoked):
		return wire.NewError(wire.ErrorCode_DEVICE_REVOKED, "the device is revoked")
	case errors.Is(err, store.ErrNotMember):
		return wire.NewError(wire.ErrorCode_FORBIDDEN, "this device is not a member of the group")
	case errors.Is(err, store.ErrInvalid):
		return wire.NewError(wire.ErrorCode_INVALID_ARGUMENT, "the request has an invalid field")
	case errors.Is(err, store.ErrClosed):
		return wire.NewError(wire.ErrorCode_UNAVAILABLE, "the server is shutting down; retry shortly")
	}
	log.Error("request failed", "kind", kind, "err", err)
	return wire.NewError(wire.ErrorCode_INTERNAL, "the server failed to handle the request; retry later")
}
