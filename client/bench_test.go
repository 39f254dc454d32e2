package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/client"
	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

// Await of a verdict that is already stored, among storedResults others, on a server of its own.
func BenchmarkAwaitStored(b *testing.B) {
	const storedResults = 20000
	srv := natsembedtest.Start(b)
	nc, js := srv.Connect(b)
	ctx := context.Background()
	topo := consumer.Topology{SubjectPrefix: "bench"}.WithDefaults()
	if _, err := consumer.Setup(ctx, js, topo, consumer.ConsumerPolicy{AckWait: time.Second, MaxDeliver: 1, MaxAckPending: 1}); err != nil {
		b.Fatal(err)
	}
	for i := range storedResults {
		id := fmt.Sprintf("bench-%d", i)
		body, _ := json.Marshal(contract.Result{Type: contract.ResultType, Message: contract.MessageSourceCreated, RequestID: id, Attempts: 1, ProducedAt: time.Now()})
		m := &nats.Msg{Subject: topo.ResultSubject(contract.MessageSourceCreated, id), Data: body, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, id)
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
	c, err := client.New(nc, client.WithSubjectPrefix("bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Await(ctx, fmt.Sprintf("bench-%d", rand.IntN(storedResults))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
