package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
	"github.com/tcpgateway/tcpgateway/gateway/push"
)

// kafkaPasswordEnv holds the SASL password when -sasl-password-file is not given, so that it
// appears neither in the process list nor in the shell history.
const kafkaPasswordEnv = "TCPGW_KAFKA_PASSWORD"

// kafkaFlags are the flags for Kafka's TLS and SASL.
type kafkaFlags struct {
	tls                           bool
	ca, cert, key, serverName     string
	mechanism, user, passwordFile string
}

func addKafkaFlags(fs *flag.FlagSet) *kafkaFlags {
	k := &kafkaFlags{}
	fs.BoolVar(&k.tls, "kafka-tls", false, "speak TLS to the brokers (implied by the other -kafka-* flags); system roots unless -kafka-ca")
	fs.StringVar(&k.ca, "kafka-ca", "", "PEM bundle of the authorities trusted for the brokers' certificates")
	fs.StringVar(&k.cert, "kafka-cert", "", "PEM client certificate, for brokers that require one (with -kafka-key)")
	fs.StringVar(&k.key, "kafka-key", "", "PEM private key of -kafka-cert")
	fs.StringVar(&k.serverName, "kafka-server-name", "", "name the brokers' certificates must carry (default: the host dialled)")
	fs.StringVar(&k.mechanism, "sasl-mechanism", kafkasec.ScramSHA512, "SASL mechanism with -sasl-username: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&k.user, "sasl-username", "", "SASL user; enables SASL")
	fs.StringVar(&k.passwordFile, "sasl-password-file", "", "file holding the SASL password (default: $"+kafkaPasswordEnv+")")
	return k
}

// apply sets the publisher's TLS and SASL from the flags; getenv is os.Getenv.
func (k *kafkaFlags) apply(o *push.Options, getenv func(string) string) error {
	if k.tls || k.ca != "" || k.cert != "" || k.key != "" || k.serverName != "" {
		var pems [3][]byte
		for i, path := range []string{k.ca, k.cert, k.key} {
			if path == "" {
				continue
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			pems[i] = b
		}
		cfg, err := kafkasec.TLSConfig(pems[0], pems[1], pems[2], k.serverName)
		if err != nil {
			return err
		}
		o.TLS = cfg
	}
	if k.user == "" {
		if k.passwordFile != "" {
			return errors.New("-sasl-password-file needs -sasl-username")
		}
		return nil
	}
	password := getenv(kafkaPasswordEnv)
	if k.passwordFile != "" {
		b, err := os.ReadFile(k.passwordFile)
		if err != nil {
			return err
		}
		password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	if password == "" {
		return fmt.Errorf("-sasl-username needs a password: -sasl-password-file or $%s", kafkaPasswordEnv)
	}
	if k.mechanism == kafkasec.Plain && o.TLS == nil {
		return errors.New("-sasl-mechanism PLAIN sends the password as it is: only with TLS (-kafka-tls or -kafka-ca)")
	}
	m, err := kafkasec.Mechanism(k.mechanism, k.user, password)
	if err != nil {
		return err
	}
	o.SASL = m
	return nil
}

// withKafkaReason appends kafkasec's reason to an error that came from Kafka, so that the
// message says which of credentials, TLS or the network to look at.
func withKafkaReason(err error) error {
	if err == nil || errors.Is(err, push.ErrTimeout) || errors.Is(err, push.ErrExpired) {
		return err
	}
	return fmt.Errorf("%w [%s]", err, kafkasec.Reason(err))
}
