package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// Safety is what two people compare to verify each other.
type Safety struct {
	Account identity.AccountID
	// Number is the 60-digit safety number of the two accounts.
	Number string
	// QR is the payload to show as a QR code (the other side scans it and
	// checks it with [identity.VerifySafetyQR]).
	QR []byte
	// Verified reports that the user confirmed this number before.
	Verified bool
	// Changed reports that the number differs from the one the user
	// confirmed before: the account's key changed.
	Changed bool
}

// SafetyNumber looks the account at address up and returns the safety
// number of this account and it. The number covers every device of both
// accounts, since members verify device certificates.
func (c *Client) SafetyNumber(ctx context.Context, address string) (*Safety, error) {
	acct, err := c.Resolve(ctx, address)
	if err != nil {
		return nil, err
	}
	mine := c.id.AccountKey.Public()
	theirs := ed25519.PublicKey(acct.Key)
	s := &Safety{Account: acct.ID, Number: identity.SafetyNumber(mine, theirs), QR: identity.SafetyQRPayload(mine, theirs)}
	ct, err := c.st.Contact(ctx, acct.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		s.Verified = ct.Verified && ct.SafetyNumber == s.Number
		s.Changed = ct.Verified && ct.SafetyNumber != s.Number
	}
	return s, nil
}

// MarkVerified records that the user compared the safety number s (from
// [Client.SafetyNumber]) with the other person and they matched.
func (c *Client) MarkVerified(ctx context.Context, s *Safety) error {
	if s == nil || s.Number == "" {
		return fmt.Errorf("%w: no safety number", store.ErrInvalid)
	}
	ct, err := c.st.Contact(ctx, s.Account)
	if errors.Is(err, store.ErrNotFound) {
		ct, err = &store.Contact{Account: s.Account}, nil
	}
	if err != nil {
		return err
	}
	ct.Verified, ct.SafetyNumber = true, s.Number
	return c.st.Update(ctx, func(tx *store.Tx) error { return tx.PutContact(ct) })
}

// SendText sends text to "to", which is a chat id or an address (a 1:1
// chat is started if needed).
func (c *Client) SendText(ctx context.Context, to, text string) (ChatID, MessageID, error) {
	if chat, err := store.ParseChatID(to); err == nil {
		if _, err := c.st.Conversation(ctx, chat); err == nil {
			id, err := c.Send(ctx, chat, text)
			return chat, id, err
		}
	}
	return c.SendTo(ctx, to, text)
}
