package pow

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestSolveVerify(t *testing.T) {
	c, err := NewChallenge(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []int{0, 1, 8, 14} {
		n, err := Solve(context.Background(), c, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(c, n, d); err != nil {
			t.Fatalf("difficulty %d: %v", d, err)
		}
		if leadingZeros(&c, &n) < d {
			t.Fatalf("difficulty %d: solution has %d zero bits", d, leadingZeros(&c, &n))
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	var c Challenge
	n, err := Solve(context.Background(), c, 12)
	if err != nil {
		t.Fatal(err)
	}
	// The same nonce for another challenge almost never has 12 zero bits;
	// find one deterministically for which it does not.
	other := c
	for i := 0; i < 256; i++ {
		other[0] = byte(i + 1)
		if leadingZeros(&other, &n) < 12 {
			break
		}
	}
	if err := Verify(other, n, 12); !errors.Is(err, ErrInvalid) {
		t.Fatalf("foreign challenge: got %v", err)
	}
	// A nonce with fewer zero bits than asked is refused.
	var weak Nonce
	for i := 0; ; i++ {
		weak[7] = byte(i)
		if leadingZeros(&c, &weak) < 12 {
			break
		}
	}
	if err := Verify(c, weak, 12); !errors.Is(err, ErrInvalid) {
		t.Fatalf("weak nonce: got %v", err)
	}
	if err := Verify(c, n, MaxBits+1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("out of range: got %v", err)
	}
}

func TestSolveCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Solve(ctx, Challenge{}, MaxBits); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	var c Challenge
	var n Nonce
	for b.Loop() {
		_ = Verify(c, n, 20)
	}
}
