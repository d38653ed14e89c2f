package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
)

var (
	// ErrMalformed is returned for bytes that are not a valid message or frame.
	ErrMalformed = errors.New("wire: malformed frame")
	// ErrTooLarge is returned for a message, frame or field over its limit.
	ErrTooLarge = errors.New("wire: too large")
)

var marshalOpts = proto.MarshalOptions{}

// AppendFrame appends f, prefixed by its length as a uvarint, to dst. It
// refuses frames larger than MaxFrameSize.
func AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	n := marshalOpts.Size(f)
	if n > MaxFrameSize {
		return dst, fmt.Errorf("failed to encode frame: %w: %d bytes, limit %d", ErrTooLarge, n, MaxFrameSize)
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	out, err := marshalOpts.MarshalAppend(dst, f)
	if err != nil {
		return dst, fmt.Errorf("failed to encode frame: %w", err)
	}
	return out, nil
}

// SplitMessage calls fn with each length-prefixed frame of a WebSocket
// message. It stops at the first error from fn. A truncated or oversized
// frame, an empty message, or more than MaxFramesPerMessage frames is
// reported as ErrMalformed or ErrTooLarge after the frames before it were
// handed to fn.
func SplitMessage(msg []byte, fn func(frame []byte) error) error {
	if len(msg) == 0 {
		return fmt.Errorf("%w: empty message", ErrMalformed)
	}
	if len(msg) > MaxMessageSize {
		return fmt.Errorf("%w: message of %d bytes, limit %d", ErrTooLarge, len(msg), MaxMessageSize)
	}
	for count := 0; len(msg) > 0; count++ {
		if count == MaxFramesPerMessage {
			return fmt.Errorf("%w: more than %d frames in one message", ErrTooLarge, MaxFramesPerMessage)
		}
		size, n := binary.Uvarint(msg)
		if n <= 0 {
			return fmt.Errorf("%w: bad length prefix", ErrMalformed)
		}
		msg = msg[n:]
		if size > MaxFrameSize {
			return fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, size, MaxFrameSize)
		}
		if size > uint64(len(msg)) {
			return fmt.Errorf("%w: truncated frame", ErrMalformed)
		}
		if err := fn(msg[:size]); err != nil {
			return err
		}
		msg = msg[size:]
	}
	return nil
}

var unmarshalOpts = proto.UnmarshalOptions{DiscardUnknown: true}

// DecodeFrame decodes one frame and checks every field limit. If the frame
// decodes but a field is over its limit, DecodeFrame returns the frame
// (so the caller can answer its id) together with a *LimitError.
func DecodeFrame(b []byte) (*Frame, error) {
	if len(b) > MaxFrameSize {
		return nil, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, len(b), MaxFrameSize)
	}
	f := new(Frame)
	if err := unmarshalOpts.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := Validate(f); err != nil {
		return f, err
	}
	return f, nil
}

// DecodeMessage decodes every frame of a WebSocket message, stopping at
// the first error. See SplitMessage and DecodeFrame.
func DecodeMessage(msg []byte, fn func(*Frame, error) error) error {
	return SplitMessage(msg, func(b []byte) error {
		return fn(DecodeFrame(b))
	})
}

// EncodeMessage encodes frames into one WebSocket message.
func EncodeMessage(frames ...*Frame) ([]byte, error) {
	var out []byte
	var err error
	for _, f := range frames {
		if out, err = AppendFrame(out, f); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Error implements the error interface, so a protocol Error received from
// a server can be returned and matched with errors.As.
func (x *Error) Error() string {
	return fmt.Sprintf("parley: %s: %s", x.GetCode(), x.GetMessage())
}

// NewError builds an Error frame body.
func NewError(code ErrorCode, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if len(msg) > MaxErrorMessage {
		msg = strings.ToValidUTF8(msg[:MaxErrorMessage], "")
	}
	return &Error{Code: code, Message: msg}
}
