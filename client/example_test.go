package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/parley-im/parley/client"
)

// A front end opens a profile, runs the sync engine, sends a message and
// prints what arrives.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := client.Open(ctx, "/path/to/profile", client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	events, stop := c.Subscribe(256)
	defer stop()
	go c.Run(ctx)

	chat, _, err := c.SendTo(ctx, "bob@example.org", "hello")
	if err != nil {
		log.Fatal(err)
	}
	for ev := range events {
		if ev.Kind == client.EventMessage && ev.Chat == chat && !ev.Message.Mine {
			fmt.Printf("%s: %s\n", ev.Sender, ev.Message.Body)
		}
	}
}
