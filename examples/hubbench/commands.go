package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// serveCommands answers one-line commands from the orchestrator: each reply
// is one line, JSON or "ERR message". greeting, when not nil, is sent first.
// QUIT replies {} and returns; anything else goes to handle.
func serveCommands(stdin io.Reader, stdout io.Writer, greeting any, handle func(cmd string, args []string) (any, error)) error {
	out := bufio.NewWriter(stdout)
	reply := func(v any, err error) error {
		if err != nil {
			fmt.Fprintf(out, "ERR %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			b, _ := json.Marshal(v)
			out.Write(b)
			out.WriteByte('\n')
		}
		return out.Flush()
	}
	if greeting != nil {
		if err := reply(greeting, nil); err != nil {
			return err
		}
	}
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "QUIT" {
			return reply(struct{}{}, nil)
		}
		v, err := handle(f[0], f[1:])
		if err := reply(v, err); err != nil {
			return err
		}
	}
	return sc.Err()
}
