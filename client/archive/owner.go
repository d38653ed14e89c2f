package archive

import (
	"bytes"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// compareDevices orders device ids bytewise.
func compareDevices(a, b identity.DeviceID) int { return bytes.Compare(a[:], b[:]) }

// Uploads reports whether device self uploads m to the archive, given the
// account's current devices (self included). Every device runs the same
// rule on the same messages, so each message is uploaded by exactly one
// device:
//
//   - a message sent by one of the account's current devices is uploaded by
//     that device (it had the message first, and its copy is authoritative);
//   - any other message (received, or sent by a device since revoked) is
//     uploaded by the current device with the lowest id (bytewise);
//   - tombstones (deleted for everyone, deleted for me, expired) are
//     uploaded by every device that has them: they carry no content, merge
//     idempotently, and must reach the archive even when the device that
//     deleted the message is not the one that uploaded it;
//   - pending messages (no server sequence number yet) are not uploaded:
//     they are archived once the server has ordered them.
//
// With devices empty, self is taken to be the only device.
func Uploads(m *store.Message, self identity.DeviceID, devices []identity.DeviceID) bool {
	if m.Seq == 0 {
		return false
	}
	if m.Deleted {
		return true
	}
	if m.Mine && !m.SenderDevice.IsZero() {
		for _, d := range devices {
			if d == m.SenderDevice {
				return d == self
			}
		}
	}
	lowest := self
	for _, d := range devices {
		if compareDevices(d, lowest) < 0 {
			lowest = d
		}
	}
	return lowest == self
}
