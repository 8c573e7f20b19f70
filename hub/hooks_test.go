package hub_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestPanicInOnConnectedEndsOnlyThatConnection(t *testing.T) {
	var n atomic.Int32
	e := newEnv(t, hub.WithOnConnected(func(context.Context, hub.ConnInfo) {
		if n.Add(1) == 1 {
			panic("secret internals")
		}
	}))
	_, token := e.negotiateV1(t)
	first := e.open(t, "id="+token, false)
	first.handshake()
	var closeMsg *jmsg
	for _, rec := range first.expectEnd() {
		if m := decodeJSON(t, rec); m.Type == 7 {
			closeMsg = &m
		}
	}
	if closeMsg == nil {
		t.Fatal("the panicking connection got no Close message")
	}
	expectClose(t, *closeMsg, "Connection closed with an error.", false)
	if strings.Contains(string(closeMsg.Raw), "secret") {
		t.Errorf("panic text leaked: %s", closeMsg.Raw)
	}

	second, id := e.connect(t)
	second.invoke("j", "JoinLeadGroup", 8).ok(t)
	if !e.s.InGroup(hub.LeadGroup(8), id) {
		t.Error("the next connection does not work")
	}
}

func TestGroupAuthorizerFailuresDenyWithoutLeaking(t *testing.T) {
	e := newEnv(t, hub.WithGroupAuthorizer(hub.GroupAuthorizerFunc(func(ctx context.Context, p *hub.Principal, id int64) (bool, error) {
		switch id {
		case 13:
			return false, errors.New("database is down at 10.0.0.7")
		case 14:
			panic("nil map in authorizer")
		case 15:
			return false, nil
		}
		if _, ok := hub.PrincipalFrom(ctx); !ok {
			return false, errors.New("no principal in the hub method's context")
		}
		return true, nil
	})))
	w, id := e.connect(t)
	tests := []struct {
		name, want, secret string
		lead               int64
	}{
		{"authorizer error", "could not check access to lead 13; try again later", "10.0.0.7", 13},
		{"authorizer panic", "An unexpected error occurred invoking 'JoinLeadGroup' on the server.", "nil map", 14},
		{"denied", "not authorized to receive updates of lead 15", "", 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := w.invoke(tt.name, "JoinLeadGroup", tt.lead)
			m.failed(t, tt.want)
			if tt.secret != "" && strings.Contains(string(m.Raw), tt.secret) {
				t.Errorf("internal detail leaked: %s", m.Raw)
			}
			if e.s.InGroup(hub.LeadGroup(tt.lead), id) {
				t.Error("joined anyway")
			}
		})
	}
	w.invoke("ok", "JoinLeadGroup", 16).ok(t)
	if !e.s.InGroup(hub.LeadGroup(16), id) {
		t.Error("an allowed join after failures did not take")
	}
}

func TestOnDisconnectedSeesTheConnection(t *testing.T) {
	var (
		mu   sync.Mutex
		gone []hub.ConnInfo
	)
	done := make(chan struct{}, 1)
	e := newEnv(t, hub.WithOnDisconnected(func(_ context.Context, info hub.ConnInfo) {
		mu.Lock()
		gone = append(gone, info)
		mu.Unlock()
		done <- struct{}{}
	}))
	w, id := e.connect(t)
	w.close()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(gone) != 1 || gone[0].ConnectionID != id || gone[0].Transport != hub.WebSockets || gone[0].Protocol != "json" {
		t.Errorf("OnDisconnected saw %+v, want connection %s over WebSockets/json", gone, id)
	}
}

func TestDisconnect(t *testing.T) {
	e := newEnv(t)
	if e.s.Disconnect("no-such-connection") {
		t.Error("Disconnect of an unknown connection reported true")
	}
	w, id := e.connect(t)
	if !e.s.Disconnect(id) {
		t.Fatal("Disconnect of an open connection reported false")
	}
	expectClose(t, w.nextJSON(true), "Connection closed by the server.", true)
}

func TestTelemetry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e := newEnv(t, hub.WithRegisterer(reg), hub.WithAuthenticator(staticTokens))
	if code, _, _ := e.do(t, "POST", e.base+"/negotiate?negotiateVersion=1", nil, nil); code != 401 {
		t.Fatalf("negotiate without a token: %d", code)
	}
	r := e.negotiate(t, "negotiateVersion=1&access_token=alice")
	w := e.open(t, "id="+r.ConnectionToken+"&access_token=alice", false)
	w.handshake()
	w.invoke("sync", "LeaveLeadGroup", 1).ok(t)
	e.s.All().Send("ReceiveLeadUpdate", 1)
	e.s.All().Send("ReceiveLeadUpdate", 2)
	w.nextJSON(true)
	w.nextJSON(true)

	want := map[string]float64{
		"leadupdates_hub_auth_failures_total":                            1,
		"leadupdates_hub_connections{transport=WebSockets}":              1,
		"leadupdates_hub_connections_opened_total{transport=WebSockets}": 1,
		"leadupdates_hub_messages_sent_total":                            2,
	}
	got := gather(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}

	w.close()
	awaitCond(t, "the connection gauge to drop", func() bool {
		return gather(t, reg)["leadupdates_hub_connections{transport=WebSockets}"] == 0
	})
	if got := gather(t, reg)["leadupdates_hub_connections_closed_total{reason=client,transport=WebSockets}"]; got != 1 {
		t.Errorf("closed by client = %v, want 1; have %v", got, gather(t, reg))
	}
}

// gather flattens a registry into "name{label=value,...}" → value.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+"="+l.GetValue())
				}
				key += "{" + strings.Join(ls, ",") + "}"
			}
			out[key] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return 0
}
