package signalrtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// An EventStream is the receiving half of a Server-Sent Events connection:
// the hub's records arrive on it, and the client sends with POSTs to
// URL?id=token. Only JSON travels this way.
type EventStream struct {
	body      *bufio.Reader
	closeBody func() error
	pending   [][]byte // records of the last event not yet returned
}

// OpenEventStream GETs URL?id=token with Accept: text/event-stream, as a
// SignalR client does after negotiate, and returns the stream once the hub
// answers 200 with Content-Type text/event-stream. Cancelling ctx ends the
// stream.
func (c *Client) OpenEventStream(ctx context.Context, token string) (*EventStream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.transportURL("http", "id="+url.QueryEscape(token)), nil)
	if err != nil {
		return nil, fmt.Errorf("signalrtest: event stream: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("signalrtest: event stream: %w", err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		resp.Body.Close()
		return nil, fmt.Errorf("signalrtest: event stream: %s, Content-Type %q", resp.Status, ct)
	}
	return &EventStream{body: bufio.NewReader(resp.Body), closeBody: resp.Body.Close}, nil
}

// ReadRecord returns the next record of the stream. An event may carry
// several records; each must end with the record separator, or the error
// wraps [ErrMalformed]. At the end of the stream the error is io.EOF, or
// what ended it.
func (s *EventStream) ReadRecord() ([]byte, error) {
	for len(s.pending) == 0 {
		data, err := s.readEvent()
		if err != nil {
			return nil, err
		}
		if !bytes.HasSuffix(data, []byte{recordSeparator}) {
			return nil, fmt.Errorf("%w: event does not end with a record separator: %q", ErrMalformed, data)
		}
		s.pending = bytes.Split(data[:len(data)-1], []byte{recordSeparator})
	}
	rec := s.pending[0]
	s.pending = s.pending[1:]
	return rec, nil
}

// readEvent returns the data of the next event that has some: its data
// lines, joined with newlines. Comments and other fields are skipped.
func (s *EventStream) readEvent() ([]byte, error) {
	var data []byte
	for {
		line, err := s.body.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "" && data != nil:
			return data, nil
		case strings.HasPrefix(line, "data:"):
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		}
	}
}

// Close ends the stream; a ReadRecord waiting on it returns.
func (s *EventStream) Close() error {
	return s.closeBody()
}
