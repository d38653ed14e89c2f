package main

import (
	qrcode "github.com/skip2/go-qrcode"
)

// qrText renders data as a QR code for a terminal, two rows of modules per
// line of text.
func qrText(data []byte) (string, error) {
	q, err := qrcode.New(string(data), qrcode.Medium)
	if err != nil {
		return "", err
	}
	return q.ToSmallString(false), nil
}
