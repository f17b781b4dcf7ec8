/**
 * A reference node's UDP endpoint across the node's life: bound before the
 * stream listens when its port is known, on the same port again after a
 * restart, and, after a graceful stop, kept up until the last session
 * holding a token has closed. What a datagram may carry and where replies
 * go is {@linkcode UdpService}'s.
 *
 * @module
 */

import {
  UdpService,
  type UdpServiceOptions,
  type UdpServiceStats,
} from "./udp_service.ts";

/** The UDP side of a node whose sessions are `S`. */
export class NodeUdp<S> {
  readonly #service: UdpService<S>;
  // The port given, then the one bound: a restart binds it again.
  #port: number | undefined;
  // Set by a graceful stop: UDP closes once no session holds a token.
  #draining = false;

  /** `port` as the node's `udpPort` option: none for the TCP port's. */
  constructor(options: UdpServiceOptions<S>, port: number | undefined) {
    this.#service = new UdpService<S>(options);
    this.#port = port;
  }

  /** Whether the socket is bound. */
  get bound(): boolean {
    return this.#service.bound;
  }

  /** The bound port, while bound. */
  get port(): number | undefined {
    return this.#service.port;
  }

  /** The bound port, else the one a start binds, when given or bound before. */
  get knownPort(): number | undefined {
    return this.#service.port ?? this.#port;
  }

  /** Sessions holding a token. */
  get sessions(): number {
    return this.#service.sessions;
  }

  /** Counters. */
  get stats(): UdpServiceStats {
    return this.#service.stats;
  }

  /**
   * Binds, unless bound, on the known port, else on `tcpPort`'s number,
   * else on any free one; a start keeps UDP up when a graceful stop was
   * draining it. A known port that cannot be bound is an error; the node
   * starts UDP before its stream then, so nothing else is open yet.
   */
  async start(hostname: string, tcpPort: number): Promise<void> {
    const udp = this.#service;
    this.#draining = false;
    if (udp.bound) return;
    try {
      await udp.bind(hostname, this.#port ?? tcpPort);
    } catch (error) {
      // Not the node's stop(): called from its start, it waited for that
      // start, which waited for it, and startTestNode never settled.
      if (this.#port !== undefined) throw error;
      // The TCP port's number is only a default; any free port will do.
      await udp.bind(hostname, 0);
    }
    // A restart binds the same UDP port again.
    this.#port = udp.port;
  }

  /** Issues `session` a token: see {@linkcode UdpService.open}. */
  open(session: S, ip: string | undefined, batch: boolean): string {
    return this.#service.open(session, ip, batch);
  }

  /**
   * Forgets `session`'s token, its TCP connection closed; closes the
   * socket when it was the last a graceful stop waited for.
   */
  revoke(session: S): void {
    this.#service.revoke(session);
    if (this.#draining && this.sessions === 0) {
      this.#draining = false;
      void this.#service.close();
    }
  }

  /** Keeps the socket up until no session holds a token. */
  drain(): void {
    this.#draining = true;
  }

  /**
   * What a node that is not running leaves: the socket kept for the
   * sessions still holding a token, closed once they are gone, or closed
   * now when there are none.
   */
  async release(): Promise<void> {
    if (this.sessions > 0) this.drain();
    else await this.close();
  }

  /** Closes the socket: see {@linkcode UdpService.close}. */
  close(): Promise<void> {
    return this.#service.close();
  }
}
