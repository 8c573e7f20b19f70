package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// maxBody bounds every request body; a larger one answers 413.
const maxBody = 1 << 20

// readBody decodes r's body, one JSON value and nothing after it, into v,
// rejecting unknown fields.
func readBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return badRequest("", "empty body")
		}
		return jsonError(err, "")
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case isTooLarge(err):
		return jsonError(err, "")
	default:
		return badRequest("", "unexpected data after the JSON value")
	}
}

// decodeStrict decodes one JSON value b into v, rejecting unknown fields;
// errors name fields with prefix (e.g. "[3].").
func decodeStrict(b []byte, v any, prefix string) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, prefix)
	}
	return nil
}

func isTooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// jsonError turns a decoding error into a 400 naming the field (413 for a
// body over the limit).
func jsonError(err error, prefix string) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case isTooLarge(err):
		return &apiError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body larger than %d bytes", maxBody)}
	case errors.As(err, &syn):
		return badRequest("", fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "truncated JSON")
	case errors.As(err, &typ):
		field := strings.TrimSuffix(prefix, ".")
		if typ.Field != "" {
			field = prefix + typ.Field
		}
		what := "body"
		if field != "" {
			what = field
		}
		if strings.HasPrefix(typ.Value, "number ") {
			return badRequest(field, what+" is out of range")
		}
		return badRequest(field, fmt.Sprintf("%s must be %s, not %s", what, kind(typ.Type), typ.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			name = strings.TrimPrefix(err.Error(), "json: unknown field ")
		}
		return badRequest(prefix+name, "unknown field "+strconv.Quote(name))
	default:
		return badRequest("", "invalid JSON: "+err.Error())
	}
}

// kind names the JSON type a Go type decodes from.
func kind(t reflect.Type) string {
	if t == nil {
		return "a valid value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return kind(t.Elem())
	}
	return "a valid value"
}
