package jwtauth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/hub/jwtauth"
)

// now is the pinned clock of every test.
func now() time.Time { return time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) }

func unix(d time.Duration) int64 { return now().Add(d).Unix() }

// keySet holds one key pair of each supported type.
type keySet struct {
	hmac  []byte
	rsa   *rsa.PrivateKey
	p256  *ecdsa.PrivateKey
	p384  *ecdsa.PrivateKey
	p521  *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
	edPub ed25519.PublicKey
}

func newKeys(t testing.TB) keySet {
	t.Helper()
	var ks keySet
	var err error
	ks.hmac = make([]byte, 32)
	rand.Read(ks.hmac)
	if ks.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		dst   **ecdsa.PrivateKey
		curve elliptic.Curve
	}{{&ks.p256, elliptic.P256()}, {&ks.p384, elliptic.P384()}, {&ks.p521, elliptic.P521()}} {
		if *k.dst, err = ecdsa.GenerateKey(k.curve, rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	if ks.edPub, ks.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	return ks
}

// validClaims returns the claims of a token that passes every check, with
// changes applied; a nil value deletes the claim.
func validClaims(changes jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":  "alice",
		"role": "agent",
		"iss":  "https://login.example.com",
		"aud":  "leadupdates",
		"iat":  unix(-time.Minute),
		"exp":  unix(time.Hour),
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newAuth(t testing.TB, key any, opts ...jwtauth.Option) *jwtauth.Authenticator {
	t.Helper()
	a, err := jwtauth.New(key, append([]jwtauth.Option{jwtauth.WithClock(now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func bearer(t testing.TB, tok string) *http.Request {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/leadupdates/negotiate", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func TestNew(t *testing.T) {
	ks := newKeys(t)
	small := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 1023), E: 65537}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  any
		opts []jwtauth.Option
		want string // error substring; "" means success
	}{
		{name: "hmac", key: ks.hmac},
		{name: "rsa", key: &ks.rsa.PublicKey},
		{name: "ecdsa", key: &ks.p256.PublicKey},
		{name: "ed25519", key: ks.edPub},
		{name: "ed25519 via Public", key: ks.ed.Public()},
		{name: "zero leeway", key: ks.hmac, opts: []jwtauth.Option{jwtauth.WithLeeway(0)}},
		{name: "nil", key: nil, want: "nil key"},
		{name: "empty hmac", key: []byte{}, want: "HMAC key is 0 bytes"},
		{name: "short hmac", key: make([]byte, 31), want: "HMAC key is 31 bytes, need at least 32"},
		{name: "string", key: "secret-secret-secret-secret-secret", want: "pass an HMAC secret as []byte"},
		{name: "nil rsa", key: (*rsa.PublicKey)(nil), want: "nil *rsa.PublicKey"},
		{name: "rsa without modulus", key: &rsa.PublicKey{E: 65537}, want: "no modulus"},
		{name: "small rsa", key: small, want: "RSA key is 1024 bits"},
		{name: "rsa private", key: ks.rsa, want: "New takes a public key, got *rsa.PrivateKey"},
		{name: "nil ecdsa", key: (*ecdsa.PublicKey)(nil), want: "nil *ecdsa.PublicKey"},
		{name: "empty ecdsa", key: &ecdsa.PublicKey{}, want: "incomplete ECDSA key"},
		{name: "p224", key: &p224.PublicKey, want: "unsupported ECDSA curve P-224"},
		{name: "ecdsa private", key: ks.p256, want: "New takes a public key"},
		{name: "short ed25519", key: ks.edPub[:31], want: "ed25519 public key is 31 bytes"},
		{name: "ed25519 private", key: ks.ed, want: "New takes a public key"},
		{name: "unsupported", key: 42, want: "unsupported key type int"},
		{name: "negative leeway", key: ks.hmac, opts: []jwtauth.Option{jwtauth.WithLeeway(-time.Second)}, want: "negative leeway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := jwtauth.New(tt.key, tt.opts...)
			checkErr(t, err, tt.want)
			if (a == nil) == (err == nil) {
				t.Errorf("New = %v, %v; want exactly one non-nil", a, err)
			}
		})
	}
}

func TestNewSigner(t *testing.T) {
	ks := newKeys(t)
	tests := []struct {
		name string
		key  any
		want string
	}{
		{name: "hmac", key: ks.hmac},
		{name: "rsa", key: ks.rsa},
		{name: "ecdsa", key: ks.p384},
		{name: "ed25519", key: ks.ed},
		{name: "nil", key: nil, want: "nil key"},
		{name: "short hmac", key: make([]byte, 16), want: "HMAC key is 16 bytes"},
		{name: "nil rsa", key: (*rsa.PrivateKey)(nil), want: "nil *rsa.PrivateKey"},
		{name: "nil ecdsa", key: (*ecdsa.PrivateKey)(nil), want: "nil *ecdsa.PrivateKey"},
		{name: "short ed25519", key: ks.ed[:32], want: "ed25519 private key is 32 bytes"},
		{name: "public key", key: &ks.rsa.PublicKey, want: "NewSigner takes a private key, got *rsa.PublicKey"},
		{name: "string", key: "secret", want: "pass an HMAC secret as []byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jwtauth.NewSigner(tt.key)
			checkErr(t, err, tt.want)
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("err = %v, want nil", err)
	case want != "" && err == nil:
		t.Fatalf("err = nil, want %q", want)
	case want != "" && (!strings.HasPrefix(err.Error(), "jwtauth: ") || !strings.Contains(err.Error(), want)):
		t.Fatalf("err = %q, want jwtauth: ...%s...", err, want)
	}
}

func TestAuthenticateAlgorithms(t *testing.T) {
	ks := newKeys(t)
	tests := []struct {
		name    string
		method  jwt.SigningMethod
		signKey any
		verKey  any
	}{
		{"HS256", jwt.SigningMethodHS256, ks.hmac, ks.hmac},
		{"HS384", jwt.SigningMethodHS384, ks.hmac, ks.hmac},
		{"HS512", jwt.SigningMethodHS512, ks.hmac, ks.hmac},
		{"RS256", jwt.SigningMethodRS256, ks.rsa, &ks.rsa.PublicKey},
		{"RS512", jwt.SigningMethodRS512, ks.rsa, &ks.rsa.PublicKey},
		{"PS256", jwt.SigningMethodPS256, ks.rsa, &ks.rsa.PublicKey},
		{"ES256", jwt.SigningMethodES256, ks.p256, &ks.p256.PublicKey},
		{"ES384", jwt.SigningMethodES384, ks.p384, &ks.p384.PublicKey},
		{"ES512", jwt.SigningMethodES512, ks.p521, &ks.p521.PublicKey},
		{"EdDSA", jwt.SigningMethodEdDSA, ks.ed, ks.edPub},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuth(t, tt.verKey)
			p, err := a.Authenticate(bearer(t, sign(t, tt.method, tt.signKey, validClaims(nil))))
			if err != nil {
				t.Fatal(err)
			}
			if p.ID != "alice" || !slices.Equal(p.Roles, []string{"agent"}) {
				t.Errorf("got ID %q, Roles %q; want alice, [agent]", p.ID, p.Roles)
			}
		})
	}
}

func TestAuthenticateRequest(t *testing.T) {
	ks := newKeys(t)
	a := newAuth(t, ks.hmac)
	tok := sign(t, jwt.SigningMethodHS256, ks.hmac, validClaims(nil))
	tests := []struct {
		name    string
		header  string // Authorization
		query   string // access_token
		noToken bool
	}{
		{name: "header", header: "Bearer " + tok},
		{name: "lowercase scheme", header: "bearer " + tok},
		{name: "access_token query", query: tok},
		{name: "header wins over query", header: "Bearer " + tok, query: "garbage"},
		{name: "no token", noToken: true},
		{name: "empty bearer", header: "Bearer ", noToken: true},
		{name: "basic scheme", header: "Basic YWxpY2U6c2VjcmV0", noToken: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := "/leadupdates?id=abc"
			if tt.query != "" {
				target += "&access_token=" + url.QueryEscape(tt.query)
			}
			r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			p, err := a.Authenticate(r)
			if got := errors.Is(err, hub.ErrNoToken); got != tt.noToken {
				t.Fatalf("errors.Is(%v, hub.ErrNoToken) = %v, want %v", err, got, tt.noToken)
			}
			if !tt.noToken && (err != nil || p.ID != "alice") {
				t.Fatalf("Authenticate = %+v, %v; want alice", p, err)
			}
		})
	}
}

func TestAuthenticateRejects(t *testing.T) {
	ks := newKeys(t)
	other := newKeys(t)
	a := newAuth(t, ks.hmac,
		jwtauth.WithIssuer("https://login.example.com"),
		jwtauth.WithAudience("leadupdates"),
	)
	hs := func(changes jwt.MapClaims) string {
		return sign(t, jwt.SigningMethodHS256, ks.hmac, validClaims(changes))
	}
	valid := hs(nil)
	head, payload, _ := strings.Cut(valid, ".")
	withCrit := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims(nil))
	withCrit.Header["crit"] = []string{"exp"}
	crit, err := withCrit.SignedString(ks.hmac)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"expired", hs(jwt.MapClaims{"exp": unix(-time.Hour)}), jwt.ErrTokenExpired},
		{"missing exp", hs(jwt.MapClaims{"exp": nil}), jwt.ErrTokenRequiredClaimMissing},
		{"exp not a number", hs(jwt.MapClaims{"exp": "tomorrow"}), jwt.ErrInvalidType},
		{"nbf in the future", hs(jwt.MapClaims{"nbf": unix(time.Hour)}), jwt.ErrTokenNotValidYet},
		{"iat in the future", hs(jwt.MapClaims{"iat": unix(time.Hour)}), jwt.ErrTokenUsedBeforeIssued},
		{"wrong issuer", hs(jwt.MapClaims{"iss": "https://evil.example.com"}), jwt.ErrTokenInvalidIssuer},
		{"missing issuer", hs(jwt.MapClaims{"iss": nil}), jwt.ErrTokenRequiredClaimMissing},
		{"wrong audience", hs(jwt.MapClaims{"aud": []string{"billing", "crm"}}), jwt.ErrTokenInvalidAudience},
		{"missing audience", hs(jwt.MapClaims{"aud": nil}), jwt.ErrTokenRequiredClaimMissing},
		{"missing sub", hs(jwt.MapClaims{"sub": nil}), jwt.ErrTokenRequiredClaimMissing},
		{"empty sub", hs(jwt.MapClaims{"sub": ""}), jwt.ErrTokenRequiredClaimMissing},
		{"numeric sub", hs(jwt.MapClaims{"sub": 42}), jwt.ErrInvalidType},
		{"numeric role", hs(jwt.MapClaims{"role": 1}), jwt.ErrInvalidType},
		{"role array with a number", hs(jwt.MapClaims{"role": []any{"agent", 1}}), jwt.ErrInvalidType},
		{"wrong key", sign(t, jwt.SigningMethodHS256, other.hmac, validClaims(nil)), jwt.ErrTokenSignatureInvalid},
		{"tampered payload", head + "." + encodeSegment(t, validClaims(jwt.MapClaims{"sub": "mallory"})) + "." + strings.SplitN(valid, ".", 3)[2], jwt.ErrTokenSignatureInvalid},
		{"no signature", head + "." + strings.SplitN(payload, ".", 2)[0] + ".", jwt.ErrTokenSignatureInvalid},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims(nil)), jwt.ErrTokenSignatureInvalid},
		{"crit header", crit, jwt.ErrTokenUnverifiable},
		{"not a JWT", "opaque-token", jwt.ErrTokenMalformed},
		{"bad base64", "a.b.c", jwt.ErrTokenMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(bearer(t, tt.token))
			if err == nil {
				t.Fatalf("Authenticate = %+v, want error", p)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "jwtauth: ") {
				t.Errorf("err = %q, want prefix jwtauth: ", err)
			}
			if errors.Is(err, hub.ErrNoToken) {
				t.Errorf("err = %v; a refused token is not a missing one", err)
			}
		})
	}
}

// encodeSegment encodes claims as a JWT segment, for forging tokens.
func encodeSegment(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return new(jwt.Token).EncodeSegment(b)
}

// TestAlgorithmConfusion checks that a token is verified only with the
// algorithms of the Authenticator's key type, whatever its alg header says.
func TestAlgorithmConfusion(t *testing.T) {
	ks := newKeys(t)
	der, err := x509.MarshalPKIXPublicKey(&ks.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	rsaAuth := newAuth(t, &ks.rsa.PublicKey)
	tests := []struct {
		name string
		auth *jwtauth.Authenticator
		tok  string
	}{
		{"HS256 keyed with RSA public key PEM", rsaAuth, sign(t, jwt.SigningMethodHS256, pemBytes, validClaims(nil))},
		{"HS256 keyed with RSA public key DER", rsaAuth, sign(t, jwt.SigningMethodHS256, der, validClaims(nil))},
		{"ES256 against RSA", rsaAuth, sign(t, jwt.SigningMethodES256, ks.p256, validClaims(nil))},
		{"RS256 against HMAC", newAuth(t, ks.hmac), sign(t, jwt.SigningMethodRS256, ks.rsa, validClaims(nil))},
		{"HS256 keyed with Ed25519 public key against EdDSA", newAuth(t, ks.edPub), sign(t, jwt.SigningMethodHS256, []byte(ks.edPub), validClaims(nil))},
		{"ES384 against P-256", newAuth(t, &ks.p256.PublicKey), sign(t, jwt.SigningMethodES384, ks.p384, validClaims(nil))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.auth.Authenticate(bearer(t, tt.tok))
			if err == nil {
				t.Fatalf("Authenticate = %+v, want error", p)
			}
			if !errors.Is(err, jwt.ErrTokenSignatureInvalid) || !strings.Contains(err.Error(), "signing method") {
				t.Errorf("err = %v, want the signing method refused", err)
			}
		})
	}
}

func TestPrincipal(t *testing.T) {
	ks := newKeys(t)
	tests := []struct {
		name      string
		opts      []jwtauth.Option
		changes   jwt.MapClaims
		wantID    string
		wantRoles []string
	}{
		{name: "role string", wantID: "alice", wantRoles: []string{"agent"}},
		{name: "role array", changes: jwt.MapClaims{"role": []string{"agent", "admin"}}, wantID: "alice", wantRoles: []string{"agent", "admin"}},
		{name: "empty role array", changes: jwt.MapClaims{"role": []string{}}, wantID: "alice", wantRoles: []string{}},
		{name: "no role", changes: jwt.MapClaims{"role": nil}, wantID: "alice"},
		{
			name:      "custom role claim",
			opts:      []jwtauth.Option{jwtauth.WithRoleClaim("roles")},
			changes:   jwt.MapClaims{"roles": []string{"admin"}},
			wantID:    "alice",
			wantRoles: []string{"admin"},
		},
		{
			name:      "custom subject claim",
			opts:      []jwtauth.Option{jwtauth.WithSubjectClaim("oid")},
			changes:   jwt.MapClaims{"sub": nil, "oid": "00000000-0000-0000-0000-000000000042"},
			wantID:    "00000000-0000-0000-0000-000000000042",
			wantRoles: []string{"agent"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuth(t, ks.hmac, tt.opts...)
			p, err := a.Authenticate(bearer(t, sign(t, jwt.SigningMethodHS256, ks.hmac, validClaims(tt.changes))))
			if err != nil {
				t.Fatal(err)
			}
			if p.ID != tt.wantID {
				t.Errorf("ID = %q, want %q", p.ID, tt.wantID)
			}
			if !slices.Equal(p.Roles, tt.wantRoles) || (p.Roles == nil) != (tt.wantRoles == nil) {
				t.Errorf("Roles = %#v, want %#v", p.Roles, tt.wantRoles)
			}
		})
	}
}

func TestPrincipalClaims(t *testing.T) {
	ks := newKeys(t)
	a := newAuth(t, ks.hmac)
	const tenant = 9007199254740993 // 2^53+1: float64 would round it
	p, err := a.Authenticate(bearer(t, sign(t, jwt.SigningMethodHS256, ks.hmac, validClaims(jwt.MapClaims{"tenant": tenant, "name": "Alice"}))))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sub", "role", "iss", "aud", "iat", "exp", "tenant", "name"} {
		if _, ok := p.Claims[name]; !ok {
			t.Errorf("Claims lacks %q: %v", name, p.Claims)
		}
	}
	if got, want := p.Claims["tenant"], json.Number("9007199254740993"); got != want {
		t.Errorf("Claims[tenant] = %#v, want %#v", got, want)
	}
	if got := p.Claims["name"]; got != "Alice" {
		t.Errorf("Claims[name] = %#v, want Alice", got)
	}
}

func TestLeeway(t *testing.T) {
	ks := newKeys(t)
	tests := []struct {
		name    string
		opts    []jwtauth.Option
		changes jwt.MapClaims
		want    error
	}{
		{name: "expired within default leeway", changes: jwt.MapClaims{"exp": unix(-20 * time.Second)}},
		{name: "expired beyond default leeway", changes: jwt.MapClaims{"exp": unix(-40 * time.Second)}, want: jwt.ErrTokenExpired},
		{name: "expired with no leeway", opts: []jwtauth.Option{jwtauth.WithLeeway(0)}, changes: jwt.MapClaims{"exp": unix(-time.Second)}, want: jwt.ErrTokenExpired},
		{name: "expired within long leeway", opts: []jwtauth.Option{jwtauth.WithLeeway(5 * time.Minute)}, changes: jwt.MapClaims{"exp": unix(-4 * time.Minute)}},
		{name: "nbf within default leeway", changes: jwt.MapClaims{"nbf": unix(20 * time.Second)}},
		{name: "nbf with no leeway", opts: []jwtauth.Option{jwtauth.WithLeeway(0)}, changes: jwt.MapClaims{"nbf": unix(time.Second)}, want: jwt.ErrTokenNotValidYet},
		{name: "iat within default leeway", changes: jwt.MapClaims{"iat": unix(20 * time.Second)}},
		{name: "iat beyond default leeway", changes: jwt.MapClaims{"iat": unix(40 * time.Second)}, want: jwt.ErrTokenUsedBeforeIssued},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuth(t, ks.hmac, tt.opts...)
			_, err := a.Authenticate(bearer(t, sign(t, jwt.SigningMethodHS256, ks.hmac, validClaims(tt.changes))))
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSigner(t *testing.T) {
	ks := newKeys(t)
	tests := []struct {
		name   string
		signer any
		verify any
	}{
		{"HS256", ks.hmac, ks.hmac},
		{"RS256", ks.rsa, &ks.rsa.PublicKey},
		{"ES256", ks.p256, &ks.p256.PublicKey},
		{"ES512", ks.p521, &ks.p521.PublicKey},
		{"EdDSA", ks.ed, ks.edPub},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := now()
			opts := []jwtauth.Option{
				jwtauth.WithIssuer("https://login.example.com"),
				jwtauth.WithAudience("leadupdates"),
				jwtauth.WithRoleClaim("roles"),
				jwtauth.WithSubjectClaim("uid"),
				jwtauth.WithClock(func() time.Time { return clock }),
				jwtauth.WithLeeway(0),
			}
			s, err := jwtauth.NewSigner(tt.signer, opts...)
			if err != nil {
				t.Fatal(err)
			}
			a, err := jwtauth.New(tt.verify, opts...)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Issue("alice", []string{"agent", "admin"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			p, err := a.Authenticate(bearer(t, tok))
			if err != nil {
				t.Fatal(err)
			}
			if p.ID != "alice" || !slices.Equal(p.Roles, []string{"agent", "admin"}) {
				t.Errorf("got ID %q, Roles %q; want alice, [agent admin]", p.ID, p.Roles)
			}
			if got := p.Claims["iss"]; got != "https://login.example.com" {
				t.Errorf("Claims[iss] = %v", got)
			}

			clock = clock.Add(time.Hour)
			if _, err := a.Authenticate(bearer(t, tok)); !errors.Is(err, jwt.ErrTokenExpired) {
				t.Errorf("after ttl: err = %v, want %v", err, jwt.ErrTokenExpired)
			}
		})
	}
}

func TestSignerIssue(t *testing.T) {
	ks := newKeys(t)
	s, err := jwtauth.NewSigner(ks.hmac, jwtauth.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		subject string
		roles   []string
		ttl     time.Duration
		want    string
	}{
		{name: "no roles", subject: "alice", ttl: time.Minute},
		{name: "empty subject", subject: "", ttl: time.Minute, want: "empty subject"},
		{name: "zero ttl", subject: "alice", want: "non-positive ttl"},
		{name: "negative ttl", subject: "alice", ttl: -time.Minute, want: "non-positive ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := s.Issue(tt.subject, tt.roles, tt.ttl)
			checkErr(t, err, tt.want)
			if err != nil {
				return
			}
			p, err := newAuth(t, ks.hmac).Authenticate(bearer(t, tok))
			if err != nil {
				t.Fatal(err)
			}
			if p.Roles != nil {
				t.Errorf("Roles = %#v, want nil", p.Roles)
			}
			if _, ok := p.Claims["role"]; ok {
				t.Errorf("Claims has role: %v", p.Claims)
			}
		})
	}
}

// TestConcurrentUse lets the race detector check the concurrency contract.
func TestConcurrentUse(t *testing.T) {
	ks := newKeys(t)
	s, err := jwtauth.NewSigner(ks.ed, jwtauth.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	a := newAuth(t, ks.edPub)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				tok, err := s.Issue("alice", []string{"agent"}, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := a.Authenticate(bearer(t, tok)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzAuthenticate feeds arbitrary tokens, from the header and from the
// query; none may panic and none may authenticate. The seeds are near misses
// that no mutation can fix without the key: tokens that are expired or signed
// with another key.
func FuzzAuthenticate(f *testing.F) {
	ks := newKeys(f)
	other := newKeys(f)
	for _, seed := range []string{
		"",
		"a.b.c",
		"eyJhbGciOiJub25lIn0.e30.",
		sign(f, jwt.SigningMethodHS256, ks.hmac, validClaims(jwt.MapClaims{"exp": unix(-time.Hour)})),
		sign(f, jwt.SigningMethodHS256, other.hmac, validClaims(nil)),
		sign(f, jwt.SigningMethodRS256, other.rsa, validClaims(nil)),
		sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims(nil)),
	} {
		f.Add(seed)
	}
	a := newAuth(f, ks.hmac)
	f.Fuzz(func(t *testing.T, tok string) {
		fromHeader := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/leadupdates", nil)
		fromHeader.Header.Set("Authorization", "Bearer "+tok)
		fromQuery := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/leadupdates?access_token="+url.QueryEscape(tok), nil)
		for _, r := range []*http.Request{fromHeader, fromQuery} {
			if p, err := a.Authenticate(r); err == nil || p != nil {
				t.Fatalf("Authenticate(%q) = %+v, %v; want nil, error", tok, p, err)
			}
		}
	})
}

func BenchmarkAuthenticate(b *testing.B) {
	ks := newKeys(b)
	for _, bb := range []struct {
		name    string
		method  jwt.SigningMethod
		signKey any
		verKey  any
	}{
		{"HS256", jwt.SigningMethodHS256, ks.hmac, ks.hmac},
		{"RS256", jwt.SigningMethodRS256, ks.rsa, &ks.rsa.PublicKey},
		{"ES256", jwt.SigningMethodES256, ks.p256, &ks.p256.PublicKey},
		{"EdDSA", jwt.SigningMethodEdDSA, ks.ed, ks.edPub},
	} {
		b.Run(bb.name, func(b *testing.B) {
			a := newAuth(b, bb.verKey)
			r := bearer(b, sign(b, bb.method, bb.signKey, validClaims(nil)))
			for b.Loop() {
				if _, err := a.Authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestExpiresAndRoleClaims: the principal carries exp plus the leeway, the
// instant the Authenticator starts refusing the token, for the hub to close
// the connection then; and by default roles come from "role" and "roles"
// alike, so an identity provider following either name is understood.
func TestExpiresAndRoleClaims(t *testing.T) {
	ks := newKeys(t)
	a := newAuth(t, ks.hmac, jwtauth.WithLeeway(10*time.Second))
	tok := sign(t, jwt.SigningMethodHS256, ks.hmac, validClaims(jwt.MapClaims{"role": nil, "roles": []string{"sales"}}))
	p, err := a.Authenticate(bearer(t, tok))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(unix(time.Hour), 0).Add(10 * time.Second); !p.Expires.Equal(want) {
		t.Errorf("Expires = %v, want %v (exp plus the leeway)", p.Expires, want)
	}
	if !p.HasRole("sales") {
		t.Errorf("roles from \"roles\": got %v, want [sales]", p.Roles)
	}
	tok = sign(t, jwt.SigningMethodHS256, ks.hmac, validClaims(jwt.MapClaims{"roles": "admin"}))
	if p, err = a.Authenticate(bearer(t, tok)); err != nil || !p.HasRole("agent") || !p.HasRole("admin") {
		t.Errorf("role and roles: got %v, %v; want both agent and admin", p, err)
	}
	only := newAuth(t, ks.hmac, jwtauth.WithRoleClaim("role"))
	if p, err = only.Authenticate(bearer(t, tok)); err != nil || p.HasRole("admin") {
		t.Errorf("WithRoleClaim(\"role\") read \"roles\" too: %v, %v", p, err)
	}
}
