package bench

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes r for people.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario     %s (server: %s)\n", r.Scenario, r.Target)
	switch r.Scenario {
	case Relay:
		fmt.Fprintf(&b, "pairs        %d\n", r.Pairs)
	case Fanout:
		fmt.Fprintf(&b, "members      %d (one sender)\n", r.Members)
	case Connections:
		fmt.Fprintf(&b, "connections  %d\n", r.Conns)
	}
	if r.Scenario != Connections {
		rate := "as fast as possible"
		if r.TargetRate > 0 {
			rate = fmt.Sprintf("%.0f msgs/s target", r.TargetRate)
		}
		fmt.Fprintf(&b, "load         %d-byte payloads, %d in flight per sender, %s, %.1fs measured\n",
			r.Size, r.Window, rate, r.DurationSeconds)
		fmt.Fprintf(&b, "durable      %.0f msgs/s (%d sends acknowledged)\n", r.SendRate, r.Sent)
		fmt.Fprintf(&b, "delivered    %.0f msgs/s (%d pushes to other devices)\n", r.DeliveryRate, r.Delivered)
		if l := r.Latency; l != nil {
			fmt.Fprintf(&b, "latency      p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  mean %.2f ms (%d samples)\n",
				l.P50, l.P99, l.P999, l.Max, l.Mean, l.Samples)
		}
		if l := r.AckLatency; l != nil {
			fmt.Fprintf(&b, "durable ack  p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms (send to the answer, which waits for fsync)\n",
				l.P50, l.P99, l.P999, l.Max)
		}
		if c := r.CPU; c != nil {
			if c.SameProcess {
				fmt.Fprintf(&b, "cpu          %.2f cores, %.1f µs per message (server and clients in one process)\n", c.ServerCores, c.ServerPerMsgUs)
			} else {
				fmt.Fprintf(&b, "cpu          server %.2f cores, %.1f µs per message; load generator %.2f cores, %.1f µs per message\n",
					c.ServerCores, c.ServerPerMsgUs, c.ClientCores, c.ClientPerMsgUs)
			}
		}
		if r.Behind > 0 {
			fmt.Fprintf(&b, "behind       %d paced sends could not start on time (target rate not reached)\n", r.Behind)
		}
		fmt.Fprintf(&b, "errors       %d", r.Errors)
		if r.FirstError != "" {
			fmt.Fprintf(&b, " (first: %s)", r.FirstError)
		}
		b.WriteString("\n")
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(&b, "server RSS   idle %s, after registration %s, with connections %s\n",
			mib(m.Idle.RSS), mib(m.Baseline.RSS), mib(m.Loaded.RSS))
		fmt.Fprintf(&b, "per conn     %.0f bytes RSS", m.RSSPerConn)
		if m.Loaded.GoInUse > 0 {
			fmt.Fprintf(&b, ", %.0f bytes Go heap+stacks", m.GoPerConn)
		}
		fmt.Fprintf(&b, " (%d of %d answered a ping afterwards)\n", m.Open, r.Conns)
		if m.Loaded.Goroutines > 0 {
			k := float64(r.Conns)
			fmt.Fprintf(&b, "per conn     %.2f goroutines, %.0f bytes of stacks\n",
				(float64(m.Loaded.Goroutines)-float64(m.Baseline.Goroutines))/k, (float64(m.Loaded.Stack)-float64(m.Baseline.Stack))/k)
		}
		fmt.Fprintf(&b, "source       %s\n", m.Loaded.Source)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note         %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
