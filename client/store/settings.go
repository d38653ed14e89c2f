package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Setting names. Every privacy-relevant setting is off until the user turns
// it on: an unset setting reads as "" and [Store.SettingOn] reports false.
const (
	SettingReadReceipts = "read-receipts"
	SettingTyping       = "typing"
	SettingLastSeen     = "last-seen"
)

// Setting values for on/off settings.
const (
	On  = "on"
	Off = "off"
)

// Limits on settings.
const (
	MaxSettingNameLen  = 64
	MaxSettingValueLen = 64 << 10
)

const (
	qUpsertSetting = `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`
	qSelectSetting = `SELECT value FROM settings WHERE name = ?`
	qDeleteSetting = `DELETE FROM settings WHERE name = ?`
	qSettingNames  = `SELECT name FROM settings WHERE substr(name, 1, ?) = ? ORDER BY name`
)

func settingRef(name string) rowRef {
	return rowRef{table: "settings", column: "value", key: []byte(name)}
}

func validSettingName(name string) bool {
	if name == "" || len(name) > MaxSettingNameLen {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

// SetSetting stores a setting. Names are 1..64 characters of a-z, 0-9, '-',
// '.' and '_'.
func (tx *Tx) SetSetting(name, value string) error {
	if !validSettingName(name) || len(value) > MaxSettingValueLen {
		return invalidf("setting %q", name)
	}
	sealed, err := tx.s.seal.seal(settingRef(name), []byte(value))
	if err != nil {
		return err
	}
	if _, err := tx.exec(qUpsertSetting, name, sealed); err != nil {
		return fmt.Errorf("failed to store setting: %w", err)
	}
	return nil
}

// DeleteSetting returns a setting to its default (unset).
func (tx *Tx) DeleteSetting(name string) error {
	if _, err := tx.exec(qDeleteSetting, name); err != nil {
		return fmt.Errorf("failed to delete setting: %w", err)
	}
	return nil
}

// Setting returns a setting's value and whether it is set.
func (s *Store) Setting(ctx context.Context, name string) (string, bool, error) {
	q, err := s.reader()
	if err != nil {
		return "", false, err
	}
	var sealed []byte
	if err := q.QueryRowContext(ctx, qSelectSetting, name).Scan(&sealed); errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	} else if err != nil {
		return "", false, fmt.Errorf("failed to read setting: %w", err)
	}
	v, err := s.seal.open(settingRef(name), sealed)
	if err != nil {
		return "", false, err
	}
	return string(v), true, nil
}

// Setting returns a setting's value as this transaction sees it, and
// whether it is set.
func (tx *Tx) Setting(name string) (string, bool, error) {
	var sealed []byte
	if err := tx.queryRow(qSelectSetting, name).Scan(&sealed); errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	} else if err != nil {
		return "", false, fmt.Errorf("failed to read setting: %w", err)
	}
	v, err := tx.s.seal.open(settingRef(name), sealed)
	if err != nil {
		return "", false, err
	}
	return string(v), true, nil
}

// SettingOn reports whether an on/off setting is on; unset means off.
func (s *Store) SettingOn(ctx context.Context, name string) (bool, error) {
	v, _, err := s.Setting(ctx, name)
	return v == On, err
}

// SettingNames returns the names of the settings that start with prefix,
// sorted.
func (s *Store) SettingNames(ctx context.Context, prefix string) ([]string, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, qSettingNames, len(prefix), prefix)
	if err != nil {
		return nil, fmt.Errorf("failed to list settings: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("failed to list settings: %w", err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to list settings: %w", err)
	}
	return out, nil
}
