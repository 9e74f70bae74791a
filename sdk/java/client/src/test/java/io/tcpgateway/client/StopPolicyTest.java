package io.tcpgateway.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import org.junit.jupiter.api.Test;
import tcpgateway.v1.Protocol.ErrorCode;

/** R29 for every ERROR code: which ones stop the client, with a fixed token and with a source. */
class StopPolicyTest {
  static Errors.ServerError err(ErrorCode c, String message) {
    return new Errors.ServerError(c, message);
  }

  @Test
  void everyCode() {
    for (ErrorCode c : ErrorCode.values()) {
      if (c == ErrorCode.UNRECOGNIZED) {
        continue;
      }
      boolean auth = c == ErrorCode.ERROR_CODE_UNAUTHENTICATED || c == ErrorCode.ERROR_CODE_TOKEN_EXPIRED;
      boolean version = c == ErrorCode.ERROR_CODE_UNSUPPORTED_VERSION;
      Errors.ServerError e = err(c, "invalid_token");
      assertEquals(auth || version, StopPolicy.stops(e, false, 10, 1), c + " with a fixed token");
      assertEquals(version, StopPolicy.stops(e, true, 10, 1), c + " with a token source, first refusal");
      assertEquals(auth || version, StopPolicy.stops(e, true, 10, 10), c + " with a token source, 10th refusal");
      assertEquals(version, StopPolicy.stops(e, true, -1, 1000), c + " with a token source that never gives up");
      assertEquals(auth, StopPolicy.isAuthRefusal(e), c.toString());
    }
  }

  @Test
  void webhookUnavailableNeverStops() {
    Errors.ServerError e = err(ErrorCode.ERROR_CODE_UNAUTHENTICATED, "webhook_unavailable");
    assertFalse(StopPolicy.stops(e, false, 10, 100));
    assertFalse(StopPolicy.stops(e, true, 10, 100));
  }

  @Test
  void transportAndTokenSourceFailuresNeverStop() {
    assertFalse(StopPolicy.stops(new IOException("reset"), false, 10, 100));
    assertFalse(StopPolicy.stops(new Errors.TokenSourceFailed(new RuntimeException("down")), false, 10, 100));
    assertTrue(StopPolicy.stops(err(ErrorCode.ERROR_CODE_UNSUPPORTED_VERSION, ""), true, -1, 0));
  }
}
