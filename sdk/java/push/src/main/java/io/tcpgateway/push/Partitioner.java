package io.tcpgateway.push;

import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.utils.Utils;

/**
 * The partition of a downlink record: murmur2 of the key, as the Java client's default
 * partitioner and the Go push SDK (kafka-go's Murmur2Balancer) choose it, so one user's records
 * share a partition whichever SDK wrote them (docs/client-behaviour.md R38). The publisher sets
 * it explicitly on each record, so a producer configured with another partitioner cannot change
 * it. gateway/push/testdata/partitions.json holds the shared vectors.
 */
public final class Partitioner {
  private Partitioner() {}

  public static int partition(String key, int partitions) {
    return partition(key.getBytes(StandardCharsets.UTF_8), partitions);
  }

  public static int partition(byte[] key, int partitions) {
    if (partitions <= 0) {
      throw new IllegalArgumentException("a topic has at least one partition");
    }
    return Utils.toPositive(Utils.murmur2(key)) % partitions;
  }
}
