package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/parley-im/parley/identity"
)

// Contact is what the user knows of another account.
type Contact struct {
	Account identity.AccountID
	// Verified is set once the user compared safety numbers.
	Verified bool
	// SafetyNumber is the safety number the user last saw (and verified, if
	// Verified), so a change can be flagged.
	SafetyNumber string
	// DisplayName is the user's name for the contact.
	DisplayName string
}

// Limits on contact fields.
const MaxContactFieldLen = 1024

const (
	qUpsertContact  = `INSERT INTO contacts (handle, record) VALUES (?, ?) ON CONFLICT (handle) DO UPDATE SET record = excluded.record`
	qSelectContact  = `SELECT handle, record FROM contacts WHERE handle = ?`
	qSelectContacts = `SELECT handle, record FROM contacts`
	qDeleteContact  = `DELETE FROM contacts WHERE handle = ?`
)

// contactHandle is the contact's row key: a keyed hash of the account id, so
// the database does not list whom the user knows.
func (s *Store) contactHandle(a identity.AccountID) []byte {
	return s.seal.handle("contact", string(a))
}

func contactRef(handle []byte) rowRef {
	return rowRef{table: "contacts", column: "record", key: handle}
}

// PutContact creates or replaces a contact.
func (tx *Tx) PutContact(c *Contact) error {
	if c == nil {
		return invalidf("nil contact")
	}
	if p, err := identity.ParseAccountID(string(c.Account)); err != nil || p != c.Account {
		return invalidf("contact %q is not an account id", c.Account)
	}
	if len(c.SafetyNumber) > MaxContactFieldLen || len(c.DisplayName) > MaxContactFieldLen {
		return invalidf("contact field over %d bytes", MaxContactFieldLen)
	}
	rec := contactRecord{account: c.Account, verified: c.Verified, safetyNumber: c.SafetyNumber, displayName: c.DisplayName}
	raw, err := rec.marshal()
	if err != nil {
		return invalidf("contact: %v", err)
	}
	h := tx.s.contactHandle(c.Account)
	sealed, err := tx.s.seal.seal(contactRef(h), raw)
	if err != nil {
		return err
	}
	if _, err := tx.exec(qUpsertContact, h, sealed); err != nil {
		return fmt.Errorf("failed to store contact: %w", err)
	}
	return nil
}

// DeleteContact forgets a contact.
func (tx *Tx) DeleteContact(a identity.AccountID) error {
	if _, err := tx.exec(qDeleteContact, tx.s.contactHandle(a)); err != nil {
		return fmt.Errorf("failed to delete contact: %w", err)
	}
	return nil
}

// Contact returns one contact, or ErrNotFound.
func (s *Store) Contact(ctx context.Context, a identity.AccountID) (*Contact, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	c, err := s.scanContact(q.QueryRowContext(ctx, qSelectContact, s.contactHandle(a)))
	if err != nil {
		return nil, err
	}
	if c.Account != a {
		return nil, &CorruptError{Table: "contacts", Column: "record"}
	}
	return c, nil
}

// Contacts returns every contact, in no particular order.
func (s *Store) Contacts(ctx context.Context) ([]*Contact, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, qSelectContacts)
	if err != nil {
		return nil, fmt.Errorf("failed to list contacts: %w", err)
	}
	defer rows.Close()
	var out []*Contact
	for rows.Next() {
		c, err := s.scanContact(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to list contacts: %w", err)
	}
	return out, nil
}

func (s *Store) scanContact(r scanner) (*Contact, error) {
	var handle, sealed []byte
	if err := r.Scan(&handle, &sealed); errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("failed to read contact: %w", err)
	}
	raw, err := s.seal.open(contactRef(handle), sealed)
	if err != nil {
		return nil, err
	}
	rec, err := parseContactRecord(raw)
	if err != nil {
		return nil, &CorruptError{Table: "contacts", Column: "record", Err: err}
	}
	if !equalBytes(handle, s.contactHandle(rec.account)) {
		return nil, &CorruptError{Table: "contacts", Column: "handle"}
	}
	return &Contact{Account: rec.account, Verified: rec.verified, SafetyNumber: rec.safetyNumber, DisplayName: rec.displayName}, nil
}
