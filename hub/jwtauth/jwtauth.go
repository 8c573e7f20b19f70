package jwtauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/leadupdates/leadupdates/hub"
)

var _ hub.Authenticator = (*Authenticator)(nil)

const (
	// minHMACKey is RFC 7518 §3.2's floor: an HMAC key at least as long as
	// the HS256 hash output, so the key is not the weak link.
	minHMACKey = 32
	// minRSABits is the NIST SP 800-131A floor for RSA signatures.
	minRSABits = 2048

	defaultLeeway       = 30 * time.Second
	defaultRoleClaim    = "role"
	defaultRolesClaim   = "roles"
	defaultSubjectClaim = "sub"
)

type config struct {
	issuer       string
	audience     string
	leeway       time.Duration
	leewaySet    bool
	roleClaim    string
	roleClaimSet bool
	subjectClaim string
	now          func() time.Time
}

// roleClaims are the claims the Authenticator reads roles from.
func roleClaims(c config) []string {
	if c.roleClaimSet {
		return []string{c.roleClaim}
	}
	return []string{defaultRoleClaim, defaultRolesClaim}
}

func newConfig(opts []Option) config {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	if !c.leewaySet {
		c.leeway = defaultLeeway
	}
	if c.roleClaim == "" {
		c.roleClaim, c.roleClaimSet = defaultRoleClaim, false
	}
	if c.subjectClaim == "" {
		c.subjectClaim = defaultSubjectClaim
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// An Option configures an [Authenticator] or a [Signer]. Give both the same
// options and the Signer issues tokens the Authenticator accepts.
type Option func(*config)

// WithIssuer makes the Authenticator require an iss claim equal to iss, and
// the Signer write it. By default the issuer is not checked.
func WithIssuer(iss string) Option {
	return func(c *config) { c.issuer = iss }
}

// WithAudience makes the Authenticator require aud in the aud claim (a string
// or an array of strings), and the Signer write it. Set it whenever the
// identity provider serves other applications too, so their tokens do not
// open this hub. By default the audience is not checked.
func WithAudience(aud string) Option {
	return func(c *config) { c.audience = aud }
}

// WithLeeway sets how far the Authenticator lets exp, nbf and iat miss its
// clock, which absorbs clock skew between the token issuer and this server.
// Defaults to 30 seconds; WithLeeway(0) allows none and a negative d makes
// [New] fail. A Signer ignores it.
func WithLeeway(d time.Duration) Option {
	return func(c *config) { c.leeway, c.leewaySet = d, true }
}

// WithRoleClaim names the one claim that holds the roles, a string or an
// array of strings, for the Authenticator and the Signer. By default the
// Authenticator reads both "role" (ASP.NET Core's short name) and "roles"
// (Microsoft Entra ID, Keycloak client roles) and takes the roles of
// either, and the Signer writes "role".
func WithRoleClaim(name string) Option {
	return func(c *config) { c.roleClaim, c.roleClaimSet = name, name != "" }
}

// WithSubjectClaim names the claim that becomes [hub.Principal.ID]; it must
// be a non-empty string. The hub groups a user's connections by that ID, so
// pick a claim that is stable per user. Defaults to "sub".
func WithSubjectClaim(name string) Option {
	return func(c *config) { c.subjectClaim = name }
}

// WithClock sets the clock the Authenticator checks exp, nbf and iat against
// and the Signer stamps tokens with, so tests can pin time. Defaults to
// [time.Now].
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// An Authenticator is a [hub.Authenticator] that accepts signed JWTs. It is
// immutable and safe for concurrent use.
type Authenticator struct {
	key          any
	parser       *jwt.Parser
	roleClaims   []string
	subjectClaim string
	leeway       time.Duration
}

// New returns an Authenticator that verifies tokens with key, whose type
// decides the algorithms accepted:
//
//   - []byte, at least 32 bytes: HS256, HS384, HS512
//   - *rsa.PublicKey, at least 2048 bits: RS256, RS384, RS512, PS256, PS384, PS512
//   - *ecdsa.PublicKey: ES256, ES384 or ES512, whichever matches its curve
//   - ed25519.PublicKey: EdDSA
//
// A token naming any other algorithm, "none" included, is rejected before its
// signature is checked: that rules out algorithm confusion, such as an HS256
// token keyed with the bytes of the RSA public key. A token must carry exp
// and the subject claim; nbf and iat are checked when present, iss and aud
// when configured.
func New(key any, opts ...Option) (*Authenticator, error) {
	c := newConfig(opts)
	if c.leeway < 0 {
		return nil, fmt.Errorf("jwtauth: negative leeway %v", c.leeway)
	}
	key, algs, err := verificationKey(key)
	if err != nil {
		return nil, err
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(c.leeway),
		jwt.WithTimeFunc(c.now),
		// Numbers stay json.Number so that large IDs in claims keep their
		// precision; float64 would round them above 2^53.
		jwt.WithJSONNumber(),
	}
	if c.issuer != "" {
		popts = append(popts, jwt.WithIssuer(c.issuer))
	}
	if c.audience != "" {
		popts = append(popts, jwt.WithAudience(c.audience))
	}
	return &Authenticator{
		key:          key,
		parser:       jwt.NewParser(popts...),
		roleClaims:   roleClaims(c),
		subjectClaim: c.subjectClaim,
		leeway:       c.leeway,
	}, nil
}

// Authenticate verifies the bearer token of r (see [hub.BearerToken]) and
// returns its principal: ID from the subject claim, Roles from the role
// claims (see [WithRoleClaim]), Expires from exp plus the leeway, and every
// claim, numbers as [encoding/json.Number], in Claims.
//
// Without a token the error wraps [hub.ErrNoToken]. Otherwise the error says
// why the token was refused, for logs, and wraps the matching
// [github.com/golang-jwt/jwt/v5] error, such as jwt.ErrTokenExpired.
func (a *Authenticator) Authenticate(r *http.Request) (*hub.Principal, error) {
	raw := hub.BearerToken(r)
	if raw == "" {
		return nil, fmt.Errorf("jwtauth: %w", hub.ErrNoToken)
	}
	claims := jwt.MapClaims{}
	if _, err := a.parser.ParseWithClaims(raw, claims, a.keyFunc); err != nil {
		return nil, fmt.Errorf("jwtauth: %w", err)
	}
	id, err := a.subject(claims)
	if err != nil {
		return nil, err
	}
	var roles []string
	for _, name := range a.roleClaims {
		rs, err := a.roles(claims, name)
		if err != nil {
			return nil, err
		}
		if rs != nil {
			roles = append(roles, rs...)
			if roles == nil {
				roles = []string{}
			}
		}
	}
	p := &hub.Principal{ID: id, Roles: roles, Claims: map[string]any(claims)}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		p.Expires = exp.Time.Add(a.leeway)
	}
	return p, nil
}

func (a *Authenticator) keyFunc(t *jwt.Token) (any, error) {
	// RFC 7515 §4.1.11: a token that marks extensions critical must be
	// refused by a verifier that does not understand them, and we know none.
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("crit header not supported")
	}
	return a.key, nil
}

func (a *Authenticator) subject(claims jwt.MapClaims) (string, error) {
	v, ok := claims[a.subjectClaim]
	if !ok {
		return "", fmt.Errorf("jwtauth: %w: %s", jwt.ErrTokenRequiredClaimMissing, a.subjectClaim)
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("jwtauth: %w: %s must be a string", jwt.ErrInvalidType, a.subjectClaim)
	}
	if s == "" {
		return "", fmt.Errorf("jwtauth: %w: %s is empty", jwt.ErrTokenRequiredClaimMissing, a.subjectClaim)
	}
	return s, nil
}

func (a *Authenticator) roles(claims jwt.MapClaims, name string) ([]string, error) {
	switch v := claims[name].(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		roles := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, roleTypeError(name)
			}
			roles = append(roles, s)
		}
		return roles, nil
	default:
		return nil, roleTypeError(name)
	}
}

func roleTypeError(name string) error {
	return fmt.Errorf("jwtauth: %w: %s must be a string or an array of strings", jwt.ErrInvalidType, name)
}

// verificationKey checks key and returns a private copy of it with the
// algorithms it may verify.
func verificationKey(key any) (any, []string, error) {
	switch k := key.(type) {
	case nil:
		return nil, nil, errors.New("jwtauth: nil key")
	case []byte:
		k, err := hmacKey(k)
		return k, []string{"HS256", "HS384", "HS512"}, err
	case *rsa.PublicKey:
		if k == nil {
			return nil, nil, errors.New("jwtauth: nil *rsa.PublicKey")
		}
		return k, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, rsaModulus(k.N)
	case *ecdsa.PublicKey:
		if k == nil {
			return nil, nil, errors.New("jwtauth: nil *ecdsa.PublicKey")
		}
		alg, err := ecdsaAlg(k)
		return k, []string{alg}, err
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, nil, fmt.Errorf("jwtauth: ed25519 public key is %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(bytes.Clone(k)), []string{"EdDSA"}, nil
	case string:
		return nil, nil, errors.New("jwtauth: key is a string; pass an HMAC secret as []byte")
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return nil, nil, fmt.Errorf("jwtauth: New takes a public key, got %T; pass its Public()", key)
	default:
		return nil, nil, fmt.Errorf("jwtauth: unsupported key type %T", key)
	}
}

func hmacKey(k []byte) ([]byte, error) {
	if len(k) < minHMACKey {
		return nil, fmt.Errorf("jwtauth: HMAC key is %d bytes, need at least %d", len(k), minHMACKey)
	}
	return bytes.Clone(k), nil
}

func rsaModulus(n *big.Int) error {
	if n == nil {
		return errors.New("jwtauth: RSA key has no modulus")
	}
	if n.BitLen() < minRSABits {
		return fmt.Errorf("jwtauth: RSA key is %d bits, need at least %d", n.BitLen(), minRSABits)
	}
	return nil
}

// ecdsaAlg returns the one algorithm RFC 7518 §3.4 pairs with k's curve.
func ecdsaAlg(k *ecdsa.PublicKey) (string, error) {
	if k.Curve == nil {
		return "", errors.New("jwtauth: incomplete ECDSA key")
	}
	if _, err := k.Bytes(); err != nil { // a point on the curve
		return "", fmt.Errorf("jwtauth: incomplete ECDSA key: %w", err)
	}
	var alg string
	switch k.Curve {
	case elliptic.P256():
		alg = "ES256"
	case elliptic.P384():
		alg = "ES384"
	case elliptic.P521():
		alg = "ES512"
	default:
		return "", fmt.Errorf("jwtauth: unsupported ECDSA curve %s; want P-256, P-384 or P-521", k.Curve.Params().Name)
	}
	if _, err := k.Bytes(); err != nil {
		return "", fmt.Errorf("jwtauth: invalid ECDSA key: %w", err)
	}
	return alg, nil
}

// A Signer issues tokens that an [Authenticator] built with the matching key
// and the same options accepts. It serves tests, examples and services that
// mint their own short-lived tokens; in production an identity provider
// usually issues them. A Signer is immutable and safe for concurrent use.
type Signer struct {
	key          any
	method       jwt.SigningMethod
	issuer       string
	audience     string
	roleClaim    string
	subjectClaim string
	now          func() time.Time
}

// NewSigner returns a Signer that signs with key, whose type decides the
// algorithm:
//
//   - []byte, at least 32 bytes: HS256
//   - *rsa.PrivateKey, at least 2048 bits: RS256
//   - *ecdsa.PrivateKey: ES256, ES384 or ES512, whichever matches its curve
//   - ed25519.PrivateKey: EdDSA
//
// [WithLeeway] does not apply to a Signer.
func NewSigner(key any, opts ...Option) (*Signer, error) {
	c := newConfig(opts)
	key, method, err := signingKey(key)
	if err != nil {
		return nil, err
	}
	return &Signer{
		key:          key,
		method:       method,
		issuer:       c.issuer,
		audience:     c.audience,
		roleClaim:    c.roleClaim,
		subjectClaim: c.subjectClaim,
		now:          c.now,
	}, nil
}

// Issue returns a token for subject, valid for ttl from now. It carries the
// subject, iat and exp, the roles as an array (omitted when there are none),
// and iss and aud when configured.
func (s *Signer) Issue(subject string, roles []string, ttl time.Duration) (string, error) {
	if subject == "" {
		return "", errors.New("jwtauth: empty subject")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("jwtauth: non-positive ttl %v", ttl)
	}
	now := s.now()
	claims := jwt.MapClaims{
		s.subjectClaim: subject,
		"iat":          jwt.NewNumericDate(now),
		"exp":          jwt.NewNumericDate(now.Add(ttl)),
	}
	if len(roles) > 0 {
		claims[s.roleClaim] = roles
	}
	if s.issuer != "" {
		claims["iss"] = s.issuer
	}
	if s.audience != "" {
		claims["aud"] = s.audience
	}
	tok, err := jwt.NewWithClaims(s.method, claims).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("jwtauth: sign: %w", err)
	}
	return tok, nil
}

// signingKey checks key and returns a private copy of it with the method
// that signs with it.
func signingKey(key any) (any, jwt.SigningMethod, error) {
	switch k := key.(type) {
	case nil:
		return nil, nil, errors.New("jwtauth: nil key")
	case []byte:
		k, err := hmacKey(k)
		return k, jwt.SigningMethodHS256, err
	case *rsa.PrivateKey:
		if k == nil {
			return nil, nil, errors.New("jwtauth: nil *rsa.PrivateKey")
		}
		return k, jwt.SigningMethodRS256, rsaModulus(k.N)
	case *ecdsa.PrivateKey:
		if k == nil {
			return nil, nil, errors.New("jwtauth: nil *ecdsa.PrivateKey")
		}
		alg, err := ecdsaAlg(&k.PublicKey)
		if err != nil {
			return nil, nil, err
		}
		return k, jwt.GetSigningMethod(alg), nil
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, nil, fmt.Errorf("jwtauth: ed25519 private key is %d bytes, want %d", len(k), ed25519.PrivateKeySize)
		}
		return ed25519.PrivateKey(bytes.Clone(k)), jwt.SigningMethodEdDSA, nil
	case string:
		return nil, nil, errors.New("jwtauth: key is a string; pass an HMAC secret as []byte")
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return nil, nil, fmt.Errorf("jwtauth: NewSigner takes a private key, got %T", key)
	default:
		return nil, nil, fmt.Errorf("jwtauth: unsupported key type %T", key)
	}
}
