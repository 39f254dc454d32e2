package consumer_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

// BenchmarkPublishResult measures what finishing a request costs on the wire: encoding the result,
// its headers, publishing it to the results stream of a real NATS server and awaiting the PubAck.
func BenchmarkPublishResult(b *testing.B) {
	srv := natsembedtest.Start(b)
	_, js := srv.Connect(b)
	ctx := context.Background()
	topo := consumer.Topology{}.WithDefaults()
	if _, err := consumer.Setup(ctx, js, topo, consumer.ConsumerPolicy{AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 1000}); err != nil {
		b.Fatal(err)
	}
	pub := consumer.NewPublisher(js, topo, "bench")
	data := json.RawMessage(`{"id":"7b3e4a52-7c55-4d8c-9b44-0a2f3f1f6a10","name":"GitHub","source_template":{"source_definition_id":"ef69ef6e-aa7f-4af1-a01d-ef775033524e","mode":"DIRECT"},"replication_config":{"repositories":["acme/app"],"credentials":"**REDACTED**"}}`)
	result := func(i int64) *contract.Result {
		return &contract.Result{
			Type: contract.ResultType, Message: contract.MessageSourceCreated, Data: data,
			RequestID: "req-" + strconv.FormatInt(i, 10), WorkspaceName: "acme", WorkspaceID: "0c5e8f0e-1c1b-4f7e-8a55-2f8d8d1b6f11",
			Attempts: 1, ProducedAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		}
	}
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var next atomic.Int64

	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := pub.PublishResult(ctx, result(next.Add(1)), traceparent); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16) // like a worker's concurrent requests sharing one connection
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := pub.PublishResult(ctx, result(next.Add(1)), traceparent); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
