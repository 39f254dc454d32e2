package app_test

import (
	"github.com/nats-io/nats.go"

	"github.com/provisioner-dev/provisioner/internal/secret"
)

func secretValue(s string) secret.Value { return secret.New(s) }

func natsMsg(subject string, data []byte, headers map[string]string) *nats.Msg {
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	for k, v := range headers {
		m.Header.Set(k, v)
	}
	return m
}
