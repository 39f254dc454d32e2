package metrics

import (
	"context"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// codeError is the code label of a call that got no response (dial failure, timeout, dropped connection).
const codeError = "error"

// precreatedCodes are the code label values created for every operation at New; 1xx and 3xx are
// created when first seen.
var precreatedCodes = []string{"2xx", "4xx", "5xx", codeError}

// InstrumentTransport wraps the Airbyte client's transport: it counts calls by operation and status class
// ("2xx", "4xx", "5xx", or "error" when the call got no response), observes the duration of the calls
// that got a response and tracks the calls in flight. operation reads the operation name from the
// request's context (airbyte.Operation); a name outside Options.Operations is recorded as "other".
//
// The in-flight gauge and the duration histogram are promhttp's middleware. The counter is not, because
// promhttp labels exact status codes and skips calls that failed without a response, and those failures
// are the ones an operator needs to see.
func (m *Metrics) InstrumentTransport(next http.RoundTripper, operation func(context.Context) string) http.RoundTripper {
	if m == nil {
		return next
	}
	op := func(ctx context.Context) string { return m.operations.value(operation(ctx)) }
	counted := promhttp.RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil {
			m.airbyteRequests.WithLabelValues(op(req.Context()), codeError).Inc()
			return resp, err
		}
		if resp.Request == nil {
			// promhttp reads the operation from resp.Request; http.Transport sets it, other transports may not.
			resp.Request = req
		}
		m.airbyteRequests.WithLabelValues(op(req.Context()), statusClass(resp.StatusCode)).Inc()
		return resp, nil
	})
	return promhttp.InstrumentRoundTripperInFlight(m.airbyteInFlight,
		promhttp.InstrumentRoundTripperDuration(m.airbyteDuration, counted,
			promhttp.WithLabelFromCtx("operation", op)))
}

// statusClass returns "2xx" for 200..299 and so on; a status outside 100..599 is "other".
func statusClass(status int) string {
	if status < 100 || status > 599 {
		return OtherLabel
	}
	return strconv.Itoa(status/100) + "xx"
}
