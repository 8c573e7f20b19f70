package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/leadupdates/leadupdates/examples/server/internal/access"
	"github.com/leadupdates/leadupdates/hub/jwtauth"
)

// token prints a token signed with the server's configuration.
func token(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "demo", "subject: the user id (a salesperson's leads have it as owner)")
	role := fs.String("role", access.RoleAdmin, "role: admin or sales")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	secret := fs.String("jwt-secret", os.Getenv("LEADUPDATES_JWT_SECRET"), "HMAC secret (env LEADUPDATES_JWT_SECRET)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *role != access.RoleAdmin && *role != access.RoleSales {
		return fmt.Errorf("role %q: want admin or sales", *role)
	}
	if *sub == "" {
		return errors.New("-sub: empty")
	}
	if *ttl <= 0 {
		return fmt.Errorf("-ttl: %v: must be positive", *ttl)
	}
	if *secret == "" {
		return errors.New("no secret: set LEADUPDATES_JWT_SECRET (or -jwt-secret) to the server's")
	}
	key, _, err := jwtKey(*secret)
	if err != nil {
		return err
	}
	signer, err := jwtauth.NewSigner(key)
	if err != nil {
		return err
	}
	tok, err := signer.Issue(*sub, []string{*role}, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// jwtKey returns the HMAC key: the configured secret, or a random one for
// this run.
func jwtKey(secret string) (key []byte, generated bool, err error) {
	if secret == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return []byte(hex.EncodeToString(b)), true, nil
	}
	if len(secret) < 32 {
		return nil, false, fmt.Errorf("the JWT secret has %d bytes; it needs at least 32", len(secret))
	}
	return []byte(secret), false, nil
}
