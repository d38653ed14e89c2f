package archive

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/parley-im/parley/client/store"
)

// RestoredSetting holds the store change numbers that [Restore] gave the
// messages it wrote, as ranges "lo-hi,lo-hi" (inclusive, ascending), until
// [Archiver.Upload] moves its cursor past them. Upload skips those changes:
// the archive already holds what a restore wrote, so a restored device that
// uploads (the lowest device, or the only one after a recovery) does not
// upload the account's history again. A later change to a restored message
// takes a new change number and is uploaded; messages stored by anything
// else than a restore (live traffic, even while a restore runs) are never
// in these ranges.
const RestoredSetting = "archive.restored"

// changeRange is an inclusive range of change numbers.
type changeRange struct{ lo, hi store.ChangeSeq }

// changeRanges is ascending and disjoint.
type changeRanges []changeRange

// parseRanges reads a [RestoredSetting] value. A malformed value reads as
// no ranges: the restored messages are then uploaded again, which costs
// bytes but loses nothing.
func parseRanges(v string) changeRanges {
	var out changeRanges
	if v == "" {
		return nil
	}
	for part := range strings.SplitSeq(v, ",") {
		a, b, ok := strings.Cut(part, "-")
		lo, err1 := strconv.ParseInt(a, 10, 64)
		hi, err2 := strconv.ParseInt(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || lo < 1 || hi < lo ||
			(len(out) > 0 && store.ChangeSeq(lo) <= out[len(out)-1].hi) {
			return nil
		}
		out = append(out, changeRange{store.ChangeSeq(lo), store.ChangeSeq(hi)})
	}
	return out
}

func (r changeRanges) String() string {
	var b strings.Builder
	for i, c := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d-%d", c.lo, c.hi)
	}
	return b.String()
}

// has reports whether c is in one of the ranges.
func (r changeRanges) has(c store.ChangeSeq) bool {
	i, _ := slices.BinarySearchFunc(r, c, func(x changeRange, c store.ChangeSeq) int {
		switch {
		case x.hi < c:
			return -1
		case x.lo > c:
			return 1
		}
		return 0
	})
	return i < len(r) && r[i].lo <= c && c <= r[i].hi
}

// add returns r with the changes cs (in any order) added, adjacent numbers
// joined into one range.
func (r changeRanges) add(cs []store.ChangeSeq) changeRanges {
	if len(cs) == 0 {
		return r
	}
	ivs := make([]changeRange, 0, len(r)+len(cs))
	ivs = append(ivs, r...)
	for _, c := range cs {
		ivs = append(ivs, changeRange{c, c})
	}
	slices.SortFunc(ivs, func(a, b changeRange) int { return int(a.lo - b.lo) })
	out := changeRanges{ivs[0]}
	for _, x := range ivs[1:] {
		last := &out[len(out)-1]
		if x.lo <= last.hi+1 {
			last.hi = max(last.hi, x.hi)
			continue
		}
		out = append(out, x)
	}
	return out
}

// after returns the ranges, cut to the changes after c.
func (r changeRanges) after(c store.ChangeSeq) changeRanges {
	var out changeRanges
	for _, x := range r {
		if x.hi <= c {
			continue
		}
		x.lo = max(x.lo, c+1)
		out = append(out, x)
	}
	return out
}

// restoredRanges reads [RestoredSetting].
func restoredRanges(ctx context.Context, st *store.Store) (changeRanges, error) {
	v, _, err := st.Setting(ctx, RestoredSetting)
	if err != nil {
		return nil, fmt.Errorf("failed to read restored changes: %w", err)
	}
	return parseRanges(v), nil
}

// saveRestored records, in the transaction that wrote them, the change
// numbers a restore gave its messages.
func saveRestored(tx *store.Tx, cs []store.ChangeSeq) error {
	if len(cs) == 0 {
		return nil
	}
	v, _, err := tx.Setting(RestoredSetting)
	if err != nil {
		return err
	}
	return tx.SetSetting(RestoredSetting, parseRanges(v).add(cs).String())
}

// pruneRestored drops the restored changes at or before the cursor c, which
// the uploader has passed.
func pruneRestored(tx *store.Tx, c store.ChangeSeq) error {
	v, ok, err := tx.Setting(RestoredSetting)
	if err != nil || !ok {
		return err
	}
	r := parseRanges(v).after(c)
	if len(r) == 0 {
		return tx.DeleteSetting(RestoredSetting)
	}
	if s := r.String(); s != v {
		return tx.SetSetting(RestoredSetting, s)
	}
	return nil
}
