package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// runToken mints an HS256 token with the secret the gateway reads (for development and
// demos; production tokens come from the app's identity provider).
func runToken(args []string) error {
	fs := flag.NewFlagSet("token", flag.ExitOnError)
	secretFile := fs.String("secret-file", "", "file holding the HS256 secret")
	user := fs.String("user", "", "user id (sub claim)")
	groups := fs.String("groups", "", "comma-separated group tags")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime")
	issuer := fs.String("issuer", "", "iss claim")
	audience := fs.String("audience", "", "aud claim")
	kid := fs.String("kid", "", "key id (header kid): the keySet key the gateway checks it with")
	_ = fs.Parse(args)
	if *secretFile == "" || *user == "" {
		return errors.New("usage: tcpgwctl token -secret-file F -user U [-issuer I] [-audience A] [-kid K] [-groups a,b] [-ttl 24h]")
	}
	secret, err := os.ReadFile(*secretFile)
	if err != nil {
		return err
	}
	claims := jwt.MapClaims{"sub": *user, "iat": time.Now().Unix(), "exp": time.Now().Add(*ttl).Unix()}
	if *groups != "" {
		claims["groups"] = strings.Split(*groups, ",")
	}
	if *issuer != "" {
		claims["iss"] = *issuer
	}
	if *audience != "" {
		claims["aud"] = *audience
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	if *kid != "" {
		tok.Header["kid"] = *kid
	}
	s, err := tok.SignedString(secret)
	if err != nil {
		return err
	}
	fmt.Println(s)
	return nil
}
