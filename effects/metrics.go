package effects

import "github.com/prometheus/client_golang/prometheus"

// metrics counts outcomes per reaction.
type metrics struct {
	sent, failed, retried, unknown *prometheus.CounterVec
}

func newMetrics() *metrics {
	c := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keyhold", Subsystem: "effects", Name: name, Help: help}, []string{"reaction"})
	}
	return &metrics{
		sent:    c("sent_total", "Events a reaction performed its effect for."),
		failed:  c("failed_total", "Events recorded as failed: a permanent failure, or retries spent."),
		retried: c("retried_total", "Attempts that failed and were scheduled for a retry."),
		unknown: c("unknown_total", "Attempts found under way after their process stopped: outcome unknown, not performed again."),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.sent, m.failed, m.retried, m.unknown} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
