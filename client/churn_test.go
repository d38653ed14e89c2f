package client

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestChurn: 20 members send at once while two admins add and remove
// members and connections drop at random. Everyone converges: nothing
// lost, nothing twice, the same order everywhere, zero undecryptable.
func TestChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("churn is long")
	}
	h := newHarness(t)
	const members, joiners, leavers, perMember = 14, 6, 3, 5
	var cs []*Client
	for range members + joiners {
		cs = append(cs, h.account(""))
	}
	host := cs[0].host
	addr := func(c *Client) string { return string(c.Me().AccountID) + "@" + host }
	var initial []string
	for _, c := range cs[1:members] {
		initial = append(initial, addr(c))
	}
	group, err := cs[0].CreateGroup(h.ctx, "churn", initial)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs[:members] {
		h.chatOn(c, group)
	}
	if err := cs[0].SetAdmins(h.ctx, group, []string{addr(cs[0]), addr(cs[1])}); err != nil {
		t.Fatal(err)
	}
	h.eventually("admins known", func() error {
		if !slices.Contains(cs[1].Admins(h.ctx, group), cs[1].Me().AccountID) {
			return fmt.Errorf("cs[1] is not admin yet")
		}
		return nil
	})

	stable := cs[:members-leavers] // never removed
	leaving := cs[members-leavers : members]
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent []string
	for i, c := range stable {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perMember {
				text := fmt.Sprintf("churn-%d-%d", i, j)
				if _, err := c.Send(h.ctx, group, text); err != nil {
					t.Errorf("send: %v", err)
					return
				}
				mu.Lock()
				sent = append(sent, text)
				mu.Unlock()
				time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
			}
		}()
	}
	wg.Add(1)
	go func() { // admin 0 adds the joiners one by one
		defer wg.Done()
		for _, c := range cs[members:] {
			if err := cs[0].AddMembers(h.ctx, group, []string{addr(c)}); err != nil {
				t.Errorf("add: %v", err)
			}
		}
	}()
	wg.Add(1)
	go func() { // admin 1 removes the leavers
		defer wg.Done()
		for _, c := range leaving {
			if err := cs[1].RemoveMembers(h.ctx, group, []string{addr(c)}); err != nil {
				t.Errorf("remove: %v", err)
			}
		}
	}()
	stop := make(chan struct{})
	var dropper sync.WaitGroup
	dropper.Add(1)
	go func() { // connections drop at random
		defer dropper.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(20+rand.IntN(40)) * time.Millisecond):
				cs[rand.IntN(len(cs))].dropConnection()
			}
		}
	}()
	wg.Wait()
	close(stop)
	dropper.Wait()
	if t.Failed() {
		t.FailNow()
	}
	h.converged(group, sent, stable...)

	// Everyone in the group now receives what follows; the removed do not.
	final := append(slices.Clone(stable), cs[members:]...)
	for _, c := range cs[members:] {
		h.chatOn(c, group)
	}
	var after []string
	for i, c := range final {
		text := fmt.Sprintf("after-churn-%d", i)
		after = append(after, text)
		h.send(c, group, text)
	}
	h.eventually("everyone gets what follows", func() error {
		for i, c := range final {
			ms, err := chatMessages(h.ctx, c, group)
			if err != nil {
				return err
			}
			for _, w := range after {
				if !slices.Contains(bodies(ms), w) {
					return fmt.Errorf("member %d lacks %q", i, w)
				}
			}
		}
		return nil
	})
	h.converged(group, append(slices.Clone(sent), after...), stable...)
	for _, c := range leaving {
		ms, _ := chatMessages(h.ctx, c, group)
		for _, w := range after {
			if slices.Contains(bodies(ms), w) {
				t.Fatalf("a removed member has %q", w)
			}
		}
	}
	h.noUndecryptable(cs...)
	h.canary(append(sent, after...))
}
