package auth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tcpgateway/tcpgateway/gateway/config"
)

// The fast path (jwt_compact.go) must answer every token exactly as golang-jwt with MapClaims
// (verifyGolangJWT), the path the gateway used before it: same reason, same identity. These
// tests put both to the same tokens, under configurations that reach every branch.

// diffNow is the verifiers' clock: claims in the cases are relative to it.
var diffNow = time.Unix(1_800_000_000, 0)

const diffKid, diffRSAKid, diffOtherKid = "k1", "r1", "k2"

// diffSetup holds the keys and, per configuration, a verifier over them.
type diffSetup struct {
	secret, otherSecret []byte
	rsa                 *rsa.PrivateKey
	verifiers           []*jwtVerifier
	names               []string
}

func newDiffSetup(t testing.TB) *diffSetup {
	t.Helper()
	s := &diffSetup{secret: randomSecret(t), otherSecret: randomSecret(t), rsa: rsaKeys()[0]}
	dir := t.TempDir()
	hs := writeFile(t, filepath.Join(dir, "hs256"), s.secret)
	rs := writeFile(t, filepath.Join(dir, "rs256.pem"), publicPEM(t, s.rsa))
	set := writeFile(t, filepath.Join(dir, "jwks.json"), jwks(t,
		octJWK(diffKid, s.secret), octJWK(diffOtherKid, s.otherSecret), rsaJWK(diffRSAKid, &s.rsa.PublicKey)))
	checked := func(c config.JWTAuth) config.JWTAuth {
		c.Issuer, c.Audience = testIssuer, testAudience
		return c
	}
	for _, c := range []struct {
		name string
		cfg  config.JWTAuth
	}{
		{"hs256+rs256 files", checked(config.JWTAuth{HS256SecretFile: hs, RS256PublicKeyFile: rs})},
		{"key set", checked(config.JWTAuth{KeySetFile: set})},
		{"file and set, no iss/aud check, uid/roles", anyIssuer(config.JWTAuth{HS256SecretFile: hs, KeySetFile: set, UserClaim: "uid", GroupsClaim: "roles"})},
		{"user iss, groups aud", checked(config.JWTAuth{HS256SecretFile: hs, UserClaim: "iss", GroupsClaim: "aud"})},
		{"user exp, groups sub, no leeway", checked(config.JWTAuth{HS256SecretFile: hs, UserClaim: "exp", GroupsClaim: "sub", Leeway: config.Duration{Duration: time.Nanosecond}})},
		{"user and groups the same claim", anyIssuer(config.JWTAuth{HS256SecretFile: hs, UserClaim: "who", GroupsClaim: "who"})},
	} {
		v, err := newJWT(c.cfg, func() time.Time { return diffNow })
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		s.verifiers = append(s.verifiers, v)
		s.names = append(s.names, c.name)
	}
	return s
}

// How a case's token is signed.
const (
	sigHS256    = iota // header.claims signed with the HS256 secret
	sigRS256           // signed with the RSA key
	sigOther           // signed with another HS256 secret (in the key set as diffOtherKid)
	sigBad             // 32 bytes that are no signature
	sigRawToken        // the case's header is the whole token
	numSigModes
)

func (s *diffSetup) token(t testing.TB, header, claims string, mode int) string {
	t.Helper()
	if mode == sigRawToken {
		return header
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	var sig []byte
	var err error
	switch mode {
	case sigHS256:
		sig, err = jwt.SigningMethodHS256.Sign(input, s.secret)
	case sigRS256:
		sig, err = jwt.SigningMethodRS256.Sign(input, s.rsa)
	case sigOther:
		sig, err = jwt.SigningMethodHS256.Sign(input, s.otherSecret)
	default:
		sig = make([]byte, 32)
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + enc.EncodeToString(sig)
}

// compare verifies token with every configuration both ways and fails on any difference. It
// returns whether the fast path decided the token under the first configuration.
func (s *diffSetup) compare(t testing.TB, token string) (decided bool) {
	t.Helper()
	if token == "" {
		return false // missing_token, answered by Verify before either path
	}
	for i, v := range s.verifiers {
		want, wantErr := v.verifyGolangJWT(token)
		got, gotErr := v.Verify(context.Background(), Request{Token: token})
		if ReasonOf(gotErr) != ReasonOf(wantErr) || (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: token %q:\n fast path: %+v, %v\n golang-jwt: %+v, %v", s.names[i], token, got, gotErr, want, wantErr)
		}
		if i == 0 {
			_, decided, _ = v.verifyCompact(token)
		}
	}
	return decided
}

// claimsWith is valid claims for diffNow with members replaced, added (name:value) or, for
// name:-, removed; members are written in order, so a name can be given twice.
func claimsWith(members ...string) string {
	base := []string{
		`"sub":"user-1"`, `"groups":["beta","eu"]`, `"iss":"` + testIssuer + `"`, `"aud":"` + testAudience + `"`,
		fmt.Sprintf(`"iat":%d`, diffNow.Unix()), fmt.Sprintf(`"exp":%d`, diffNow.Unix()+3600),
	}
	name := func(m string) string { return m[:strings.Index(m[1:], `"`)+2] }
	for _, m := range members {
		replaced := false
		for i, b := range base {
			if b != "" && name(b) == name(m) {
				base[i], replaced = m, true
				break
			}
		}
		if !replaced {
			base = append(base, m)
		}
	}
	var out []string
	for _, m := range base {
		if m != "" && !strings.HasSuffix(m, ":-") {
			out = append(out, m)
		}
	}
	return "{" + strings.Join(out, ",") + "}"
}

func at(d time.Duration) string { return fmt.Sprint(diffNow.Add(d).Unix()) }

const hsHeader = `{"alg":"HS256","typ":"JWT"}`

// diffCase is a token for every configuration; fast says whether the fast path decides it
// under the first configuration (files, iss and aud checked), so a silent fall back to
// golang-jwt of ordinary tokens fails the test too.
type diffCase struct {
	name, header, claims string
	sig                  int
	fast                 bool
}

func diffCases() []diffCase {
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	c := []diffCase{
		{"valid", hsHeader, claimsWith(), sigHS256, true},
		{"valid RS256", `{"alg":"RS256"}`, claimsWith(), sigRS256, true},
		{"valid, whitespace everywhere", " {\n\"alg\" : \"HS256\" }\t", " { \"sub\" :\r\n\"u\" , \"exp\" : " + at(time.Hour) + ", \"iss\":\"" + testIssuer + "\",\"aud\":[ \"" + testAudience + "\" ] } ", sigHS256, true},
		{"bad signature", hsHeader, claimsWith(), sigBad, true},
		{"signed with another secret", hsHeader, claimsWith(), sigOther, true},
		{"RS256 header, HS256 signature", `{"alg":"RS256"}`, claimsWith(), sigHS256, true},
		{"HS256 header, RS256 signature", hsHeader, claimsWith(), sigRS256, true},

		// Case variants: map keys match exactly.
		{"SUB", hsHeader, claimsWith(`"sub":-`, `"SUB":"u"`), sigHS256, true},
		{"Exp", hsHeader, claimsWith(`"exp":-`, `"Exp":`+at(time.Hour)), sigHS256, true},
		{"ISS", hsHeader, claimsWith(`"iss":-`, `"ISS":"`+testIssuer+`"`), sigHS256, true},
		{"Aud", hsHeader, claimsWith(`"aud":-`, `"Aud":"`+testAudience+`"`), sigHS256, true},
		{"Groups", hsHeader, claimsWith(`"groups":-`, `"Groups":[1]`), sigHS256, true},
		{"ALG", `{"ALG":"HS256"}`, claimsWith(), sigHS256, false},
		{"alg hs256", `{"alg":"hs256"}`, claimsWith(), sigHS256, false},

		// Duplicated names: the last one counts.
		{"sub twice", hsHeader, claimsWith(`"sub":"a"`, `"sub":"b"`), sigHS256, true},
		{"exp expired then valid", hsHeader, claimsWith(`"exp":`+at(-time.Hour), `"exp":`+at(time.Hour)), sigHS256, true},
		{"exp valid then expired", hsHeader, claimsWith(`"exp":`+at(time.Hour), `"exp":`+at(-time.Hour)), sigHS256, true},
		{"iss wrong then right", hsHeader, `{"sub":"u","iss":"x","iss":"` + testIssuer + `","aud":"` + testAudience + `","exp":` + at(time.Hour) + `}`, sigHS256, true},
		{"aud right then wrong type", hsHeader, claimsWith(`"aud":"`+testAudience+`"`, `"aud":5`), sigHS256, true},
		{"groups twice", hsHeader, claimsWith(`"groups":[1]`, `"groups":["x"]`), sigHS256, true},
		{"alg none then HS256", `{"alg":"none","alg":"HS256"}`, claimsWith(), sigHS256, true},
		{"alg HS256 then none", `{"alg":"HS256","alg":"none"}`, claimsWith(), sigHS256, false},
		{"kid twice, unknown then known", `{"alg":"HS256","kid":"zz","kid":"` + diffKid + `"}`, claimsWith(), sigHS256, false},

		// Escapes and Unicode.
		{"escaped names", `{"\u0061lg":"H\u0053256"}`, `{"s\u0075b":"u","\u0065xp":` + at(time.Hour) + `,"iss":"` + testIssuer + `","aud":"` + testAudience + `"}`, sigHS256, true},
		{"escaped user", hsHeader, claimsWith(`"sub":"user\u002d1 \u00e9 \ud83d\ude00 \"q\" \\ \/ \n"`), sigHS256, true},
		{"NUL in user", hsHeader, claimsWith(`"sub":"a\u0000b"`), sigHS256, true},
		{"UTF-8 user", hsHeader, claimsWith(`"sub":"ünïcødé 😀"`), sigHS256, true},
		{"lone surrogate in user", hsHeader, claimsWith(`"sub":"a\ud800b"`), sigHS256, false},
		{"reversed surrogates in user", hsHeader, claimsWith(`"sub":"\udc00\ud800"`), sigHS256, false},
		{"invalid UTF-8 in user", hsHeader, claimsWith("\"sub\":\"a\xffb\""), sigHS256, false},
		{"invalid UTF-8 elsewhere", hsHeader, claimsWith("\"x\":\"\xc3\""), sigHS256, false},
		{"invalid UTF-8 in a name", hsHeader, claimsWith("\"sub\xff\":\"x\""), sigHS256, false},
		{"bad escape", hsHeader, claimsWith(`"x":"\q"`), sigHS256, false},
		{"control character", hsHeader, claimsWith("\"x\":\"a\tb\""), sigHS256, false},

		// Wrong types in checked claims.
		{"exp string", hsHeader, claimsWith(`"exp":"` + at(time.Hour) + `"`), sigHS256, true},
		{"exp null", hsHeader, claimsWith(`"exp":null`), sigHS256, true},
		{"exp true", hsHeader, claimsWith(`"exp":true`), sigHS256, true},
		{"exp array", hsHeader, claimsWith(`"exp":[` + at(time.Hour) + `]`), sigHS256, true},
		{"exp object", hsHeader, claimsWith(`"exp":{}`), sigHS256, true},
		{"exp missing", hsHeader, claimsWith(`"exp":-`), sigHS256, true},
		{"nbf string", hsHeader, claimsWith(`"nbf":"x"`), sigHS256, true},
		{"nbf null", hsHeader, claimsWith(`"nbf":null`), sigHS256, true},
		{"iat null", hsHeader, claimsWith(`"iat":null`), sigHS256, true},
		{"iat object", hsHeader, claimsWith(`"iat":{"a":1}`), sigHS256, true},
		{"iss number", hsHeader, claimsWith(`"iss":5`), sigHS256, true},
		{"iss null", hsHeader, claimsWith(`"iss":null`), sigHS256, true},
		{"iss empty", hsHeader, claimsWith(`"iss":""`), sigHS256, true},
		{"iss missing", hsHeader, claimsWith(`"iss":-`), sigHS256, true},
		{"iss other", hsHeader, claimsWith(`"iss":"https://evil.example.com"`), sigHS256, true},
		{"iss array", hsHeader, claimsWith(`"iss":["` + testIssuer + `"]`), sigHS256, true},
		{"aud number", hsHeader, claimsWith(`"aud":5`), sigHS256, true},
		{"aud null", hsHeader, claimsWith(`"aud":null`), sigHS256, true},
		{"aud object", hsHeader, claimsWith(`"aud":{"a":"` + testAudience + `"}`), sigHS256, true},
		{"aud list", hsHeader, claimsWith(`"aud":["other","` + testAudience + `"]`), sigHS256, true},
		{"aud list without ours", hsHeader, claimsWith(`"aud":["other"]`), sigHS256, true},
		{"aud list with a number", hsHeader, claimsWith(`"aud":["` + testAudience + `",1]`), sigHS256, true},
		{"aud list with null", hsHeader, claimsWith(`"aud":[null]`), sigHS256, true},
		{"aud empty list", hsHeader, claimsWith(`"aud":[]`), sigHS256, true},
		{"aud [\"\"]", hsHeader, claimsWith(`"aud":[""]`), sigHS256, true},
		{"aud [\"\", ours]", hsHeader, claimsWith(`"aud":["","` + testAudience + `"]`), sigHS256, true},
		{"aud empty string", hsHeader, claimsWith(`"aud":""`), sigHS256, true},
		{"aud missing", hsHeader, claimsWith(`"aud":-`), sigHS256, true},
		{"aud nested list", hsHeader, claimsWith(`"aud":[["` + testAudience + `"]]`), sigHS256, true},

		// Wrong types in claims nothing checks.
		{"jti number", hsHeader, claimsWith(`"jti":5`), sigHS256, true},
		{"sub number (groups config)", hsHeader, claimsWith(`"sub":5`, `"uid":"u"`, `"who":"w"`), sigHS256, true},
		{"uid and roles", hsHeader, claimsWith(`"uid":"u-9"`, `"roles":["admin"]`), sigHS256, true},
		{"roles wrong", hsHeader, claimsWith(`"uid":"u-9"`, `"roles":"admin"`), sigHS256, true},
		{"who list", hsHeader, claimsWith(`"who":["a"]`), sigHS256, true},
		{"who string", hsHeader, claimsWith(`"who":"a"`), sigHS256, true},
		{"iss as user, aud as groups", hsHeader, claimsWith(`"aud":["` + testAudience + `","eu"]`), sigHS256, true},

		// Numbers.
		{"exp 1e400", hsHeader, claimsWith(`"exp":1e400`), sigHS256, false},
		{"unrelated 1e400", hsHeader, claimsWith(`"x":1e400`), sigHS256, false},
		{"unrelated -1e400", hsHeader, claimsWith(`"x":-1e400`), sigHS256, false},
		{"nested 1e400", hsHeader, claimsWith(`"x":{"y":[1,{"z":1e400}]}`), sigHS256, false},
		{"header 1e400", `{"alg":"HS256","x":1e400}`, claimsWith(), sigHS256, false},
		{"unrelated 1e-400", hsHeader, claimsWith(`"x":1e-400`), sigHS256, true},
		{"exp 1e-400", hsHeader, claimsWith(`"exp":1e-400`), sigHS256, true},
		{"exp 1e300", hsHeader, claimsWith(`"exp":1e300`), sigHS256, true},
		{"exp -1e300", hsHeader, claimsWith(`"exp":-1e300`), sigHS256, true},
		{"exp 2^63-1", hsHeader, claimsWith(`"exp":9223372036854775807`), sigHS256, true},
		{"exp 2^63", hsHeader, claimsWith(`"exp":9223372036854775808`), sigHS256, true},
		{"exp 0", hsHeader, claimsWith(`"exp":0`), sigHS256, true},
		{"exp -0", hsHeader, claimsWith(`"exp":-0`), sigHS256, true},
		{"exp 0.0e5", hsHeader, claimsWith(`"exp":0.0e5`), sigHS256, true},
		{"exp -1", hsHeader, claimsWith(`"exp":-1`), sigHS256, true},
		{"exp fraction", hsHeader, claimsWith(`"exp":` + at(time.Hour) + `.75`), sigHS256, true},
		{"exp exponent", hsHeader, claimsWith(`"exp":1.9e9`), sigHS256, true},
		{"exp leading zero", hsHeader, claimsWith(`"exp":0` + at(time.Hour)), sigHS256, false},
		{"exp plus sign", hsHeader, claimsWith(`"exp":+` + at(time.Hour)), sigHS256, false},
		{"big unrelated integer", hsHeader, claimsWith(`"x":123456789012345678901234567890`), sigHS256, true},

		// Time edges, with the default 30 s leeway.
		{"exp now", hsHeader, claimsWith(`"exp":` + at(0)), sigHS256, true},
		{"exp now-29s", hsHeader, claimsWith(`"exp":` + at(-29*time.Second)), sigHS256, true},
		{"exp now-30s", hsHeader, claimsWith(`"exp":` + at(-30*time.Second)), sigHS256, true},
		{"exp now-30s+0.5", hsHeader, claimsWith(`"exp":` + at(-30*time.Second) + `.5`), sigHS256, true},
		{"exp now-31s", hsHeader, claimsWith(`"exp":` + at(-31*time.Second)), sigHS256, true},
		{"nbf now+30s", hsHeader, claimsWith(`"nbf":` + at(30*time.Second)), sigHS256, true},
		{"nbf now+30.5s", hsHeader, claimsWith(`"nbf":` + at(30*time.Second) + `.5`), sigHS256, true},
		{"nbf now+31s", hsHeader, claimsWith(`"nbf":` + at(31*time.Second)), sigHS256, true},
		{"nbf 0", hsHeader, claimsWith(`"nbf":0`), sigHS256, true},
		{"iat now+30s", hsHeader, claimsWith(`"iat":` + at(30*time.Second)), sigHS256, true},
		{"iat now+31s", hsHeader, claimsWith(`"iat":` + at(31*time.Second)), sigHS256, true},
		{"iat far past", hsHeader, claimsWith(`"iat":1`), sigHS256, true},
		{"expired and wrong issuer", hsHeader, claimsWith(`"exp":`+at(-time.Hour), `"iss":"x"`), sigHS256, true},
		{"expired and not yet valid", hsHeader, claimsWith(`"exp":`+at(-time.Hour), `"nbf":`+at(time.Hour)), sigHS256, true},
		{"expired and no user", hsHeader, claimsWith(`"exp":`+at(-time.Hour), `"sub":-`), sigHS256, true},
		{"expired, bad signature", hsHeader, claimsWith(`"exp":` + at(-time.Hour)), sigBad, true},

		// The identity claims.
		{"sub empty", hsHeader, claimsWith(`"sub":""`), sigHS256, true},
		{"sub null", hsHeader, claimsWith(`"sub":null`), sigHS256, true},
		{"sub list", hsHeader, claimsWith(`"sub":["a"]`), sigHS256, true},
		{"sub missing", hsHeader, claimsWith(`"sub":-`), sigHS256, true},
		{"groups null", hsHeader, claimsWith(`"groups":null`), sigHS256, true},
		{"groups missing", hsHeader, claimsWith(`"groups":-`), sigHS256, true},
		{"groups empty", hsHeader, claimsWith(`"groups":[]`), sigHS256, true},
		{"groups string", hsHeader, claimsWith(`"groups":"beta"`), sigHS256, true},
		{"groups number", hsHeader, claimsWith(`"groups":1`), sigHS256, true},
		{"groups true", hsHeader, claimsWith(`"groups":true`), sigHS256, true},
		{"groups object", hsHeader, claimsWith(`"groups":{"a":"b"}`), sigHS256, true},
		{"groups with null", hsHeader, claimsWith(`"groups":["a",null]`), sigHS256, true},
		{"groups nested", hsHeader, claimsWith(`"groups":[["a"]]`), sigHS256, true},
		{"groups with empty string", hsHeader, claimsWith(`"groups":["",""]`), sigHS256, true},

		// Not one JSON object.
		{"claims null", hsHeader, `null`, sigHS256, false},
		{"claims array", hsHeader, `[]`, sigHS256, false},
		{"claims string", hsHeader, `"x"`, sigHS256, false},
		{"claims number", hsHeader, `5`, sigHS256, false},
		{"claims true", hsHeader, `true`, sigHS256, false},
		{"claims empty", hsHeader, ``, sigHS256, false},
		{"claims {}", hsHeader, `{}`, sigHS256, true},
		{"claims and trailing garbage", hsHeader, claimsWith() + ` x`, sigHS256, false},
		{"claims twice", hsHeader, claimsWith() + claimsWith(), sigHS256, false},
		{"claims trailing comma", hsHeader, `{"sub":"u",}`, sigHS256, false},
		{"claims unterminated", hsHeader, `{"sub":"u"`, sigHS256, false},
		{"claims deep", hsHeader, claimsWith(`"x":` + deep), sigHS256, false},
		{"claims 10001 deep", hsHeader, claimsWith(`"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001)), sigHS256, false},
		{"claims BOM", hsHeader, "\ufeff" + claimsWith(), sigHS256, false},
		{"header null", `null`, claimsWith(), sigHS256, false},
		{"header array", `["alg","HS256"]`, claimsWith(), sigHS256, false},
		{"header empty object", `{}`, claimsWith(), sigHS256, false},
		{"header empty", ``, claimsWith(), sigHS256, false},

		// The header's alg and kid.
		{"alg none", `{"alg":"none"}`, claimsWith(), sigHS256, false},
		{"alg HS384", `{"alg":"HS384"}`, claimsWith(), sigHS256, false},
		{"alg ES256", `{"alg":"ES256"}`, claimsWith(), sigHS256, false},
		{"alg number", `{"alg":5}`, claimsWith(), sigHS256, false},
		{"alg null", `{"alg":null}`, claimsWith(), sigHS256, false},
		{"kid null", `{"alg":"HS256","kid":null}`, claimsWith(), sigHS256, false},
		{"kid empty", `{"alg":"HS256","kid":""}`, claimsWith(), sigHS256, false},
		{"kid number", `{"alg":"HS256","kid":5}`, claimsWith(), sigHS256, false},
		{"kid unknown", `{"alg":"HS256","kid":"nope"}`, claimsWith(), sigHS256, false},
		{"kid HS256", `{"alg":"HS256","kid":"` + diffKid + `"}`, claimsWith(), sigHS256, false},
		{"kid HS256, other secret", `{"alg":"HS256","kid":"` + diffKid + `"}`, claimsWith(), sigOther, false},
		{"kid other", `{"alg":"HS256","kid":"` + diffOtherKid + `"}`, claimsWith(), sigOther, false},
		{"kid RS256", `{"alg":"RS256","kid":"` + diffRSAKid + `"}`, claimsWith(), sigRS256, false},
		{"kid of another alg", `{"alg":"HS256","kid":"` + diffRSAKid + `"}`, claimsWith(), sigHS256, false},
		{"kid escaped", `{"alg":"HS256","kid":"\u006b1"}`, claimsWith(), sigHS256, false},
		{"kid unknown, expired", `{"alg":"HS256","kid":"nope"}`, claimsWith(`"exp":` + at(-time.Hour)), sigHS256, false},
		{"kid unknown, claims not an object", `{"alg":"HS256","kid":"nope"}`, `[]`, sigHS256, false},
		{"other header members", `{"alg":"HS256","typ":"JWT","x5u":{"a":[1,2,{"b":null}]},"crit":["exp"]}`, claimsWith(), sigHS256, true},
	}
	// Token structure, given whole.
	for _, raw := range []struct{ name, token string }{
		{"no dots", "abc"},
		{"one dot", "abc.def"},
		{"three dots", "a.b.c.d"},
		{"empty parts", ".."},
		{"spaces", " . . "},
	} {
		c = append(c, diffCase{"raw: " + raw.name, raw.token, "", sigRawToken, false})
	}
	return c
}

// tokenVariants are encodings of one signed token that golang-jwt's non-strict decoding
// reads in its own ways.
func tokenVariants(tok string) map[string]string {
	parts := strings.Split(tok, ".")
	return map[string]string{
		"signature padded":            parts[0] + "." + parts[1] + "." + parts[2] + "=",
		"newline in header":           parts[0][:2] + "\n" + parts[0][2:] + "." + parts[1] + "." + parts[2],
		"CRLF in signature":           parts[0] + "." + parts[1] + "." + parts[2][:3] + "\r\n" + parts[2][3:],
		"signature truncated":         parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2],
		"signature empty":             parts[0] + "." + parts[1] + ".",
		"standard alphabet":           strings.NewReplacer("-", "+", "_", "/").Replace(tok),
		"leading space":               " " + tok,
		"trailing newline":            tok + "\n",
		"signature one bit off":       parts[0] + "." + parts[1] + "." + flipLast(parts[2]),
		"signature of the wrong part": parts[0] + "." + parts[1] + "." + parts[0],
	}
}

// flipLast changes the last base64 character in a way that keeps the encoding valid but
// changes the decoded bytes (or, non-strict, only the unused trailing bits).
func flipLast(s string) string {
	b := []byte(s)
	if b[len(b)-1] == 'A' {
		b[len(b)-1] = 'B'
	} else {
		b[len(b)-1] = 'A'
	}
	return string(b)
}

func TestJWTFastPathMatchesGolangJWT(t *testing.T) {
	s := newDiffSetup(t)
	for _, c := range diffCases() {
		t.Run(c.name, func(t *testing.T) {
			tok := s.token(t, c.header, c.claims, c.sig)
			if decided := s.compare(t, tok); decided != c.fast {
				t.Errorf("fast path decided = %v, want %v", decided, c.fast)
			}
		})
	}
	for _, sig := range []int{sigHS256, sigRS256} {
		header := hsHeader
		if sig == sigRS256 {
			header = `{"alg":"RS256"}`
		}
		for name, tok := range tokenVariants(s.token(t, header, claimsWith(), sig)) {
			t.Run(fmt.Sprintf("%s %s", header, name), func(t *testing.T) { s.compare(t, tok) })
		}
	}
}

// TestJWTFastPathAllocations pins the point of the fast path: an ordinary token's check
// allocates only the identity it returns (the user id, the groups and their strings).
func TestJWTFastPathAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	s := newDiffSetup(t)
	tok := s.token(t, hsHeader, claimsWith(), sigHS256)
	v := s.verifiers[0]
	if _, err := v.Verify(context.Background(), Request{Token: tok}); err != nil {
		t.Fatal(err)
	}
	// user-1, the groups slice, beta, eu.
	if got := testing.AllocsPerRun(100, func() { _, _ = v.Verify(context.Background(), Request{Token: tok}) }); got > 4 {
		t.Errorf("an HS256 check allocates %v times, want at most 4", got)
	}
}

// FuzzJWTMatchesGolangJWT puts the fast path and golang-jwt to the same tokens: a header and
// claims as JSON text, signed (or not) as mode says, checked under one of the configurations.
// The seed corpus is every case of TestJWTFastPathMatchesGolangJWT.
func FuzzJWTMatchesGolangJWT(f *testing.F) {
	s := newDiffSetup(f)
	for _, c := range diffCases() {
		if c.sig != sigRS256 {
			f.Add(c.header, c.claims, uint8(c.sig))
		}
	}
	f.Fuzz(func(t *testing.T, header, claims string, mode uint8) {
		sig := int(mode) % numSigModes
		if sig == sigRS256 && mode >= 64 {
			sig = sigHS256 // RSA signing is slow: a quarter of the modes only
		}
		s.compare(t, s.token(t, header, claims, sig))
	})
}
