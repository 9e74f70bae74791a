package server_test

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func signExpired(h *harness) (string, error) {
	claims := jwt.MapClaims{"sub": "late", "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(-time.Hour).Unix()}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(h.secret)
}
