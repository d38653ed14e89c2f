package tui

import (
	"fmt"
	"testing"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
)

// TestErrorTextOwnAddressAndInvalid checks the status-line sentences for
// one's own address and for a refused argument (no error-class prefix).
func TestErrorTextOwnAddressAndInvalid(t *testing.T) {
	if got := errorText(fmt.Errorf("wrapped: %w", client.ErrOwnAddress)); got != "that is your own address: give another account's" {
		t.Errorf("own address: %q", got)
	}
	err := fmt.Errorf("%w: carol@127.0.0.1 is not a member of this group, so it cannot be an admin", store.ErrInvalid)
	if got := errorText(err); got != "carol@127.0.0.1 is not a member of this group, so it cannot be an admin" {
		t.Errorf("invalid argument: %q", got)
	}
}
