// Parley browser softphone: a plain ES module (no build step, no CDN).
//
//   import { Softphone } from '/softphone.js';
//   const phone = new Softphone();
//   phone.addEventListener('incoming', (e) => phone.answer(e.detail.call_id));
//   await phone.connect(token);        // resolves once registered as the agent's device
//   const id = await phone.dial('*43'); // echo test; or an extension, or '+4930…'
//   phone.liveCallId(id);              // the call's id in /api/v1/calls (controls)
//   phone.dtmf('123'); phone.mute(true); phone.hangup(id);
//   console.log(await phone.stats(id));
//
// Events (CustomEvent, the server's message in `detail`): ready, incoming, dialing,
// ringing, answered, hungup, dtmf, error, and `closed` when the signalling socket
// ends (`detail.code`). Microphone failures reject dial()/answer() and emit `error`.
// `incoming` and `dialing` carry `live_call_id`: the call in /api/v1/calls whose
// controls (hold, transfers, …) apply to this browser call. A call placed to an
// extension or a number is `answered` as soon as this browser is connected to Parley;
// the far end's progress is the live call's state.

export class Softphone extends EventTarget {
  // `iceServers`: the STUN/TURN servers to use; default: the server's (sent with `ready`).
  // `iceTransportPolicy`: 'all' (default) or 'relay' (TURN only).
  constructor({ base = '', iceServers = null, iceTransportPolicy = 'all' } = {}) {
    super();
    this.base = base || window.location.origin;
    this.iceServers = iceServers;
    this.iceTransportPolicy = iceTransportPolicy;
    this.serverIceServers = [];
    this.ws = null;
    this.calls = new Map(); // call_id -> { pc, stream, audio, state }
    this.pendingDial = null; // { pc, stream, audio, resolve, reject }
    this.extension = null;
    this.live = new Map(); // ringing call_id -> live call id
  }

  /** Opens the signalling socket; resolves with the `ready` message. */
  connect(token) {
    const url = new URL('/api/v1/softphone', this.base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('access_token', token);
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      this.ws = ws;
      let ready = false;
      ws.onmessage = (m) => {
        let msg;
        try { msg = JSON.parse(m.data); } catch { return; }
        if (msg.type === 'ready') {
          ready = true;
          this.extension = msg.extension;
          this.serverIceServers = msg.ice_servers || [];
          resolve(msg);
        }
        this.#onMessage(msg);
      };
      ws.onclose = (e) => {
        if (!ready) reject(new Error(`softphone connection failed (${e.code})`));
        for (const id of [...this.calls.keys()]) this.#end(id, 'connection_lost');
        this.#emit('closed', { code: e.code, reason: e.reason });
      };
      ws.onerror = () => this.#emit('error', { message: 'softphone connection error' });
    });
  }

  /** Calls `number` (an extension, `*43`, ...); resolves with the call id. */
  async dial(number) {
    const media = await this.#media();
    const sdp = await this.#offer(media.pc);
    return new Promise((resolve, reject) => {
      this.pendingDial = { ...media, resolve, reject };
      this.#send({ type: 'dial', number, sdp });
    });
  }

  /** The live call (/api/v1/calls/{id}) of the browser call `callId`, once known. */
  liveCallId(callId) {
    return this.calls.get(callId)?.live || this.live.get(callId) || null;
  }

  /** Answers the ringing call `callId`. */
  async answer(callId) {
    const media = await this.#media();
    this.calls.set(callId, { ...media, state: 'answering', live: this.live.get(callId) || null });
    const sdp = await this.#offer(media.pc);
    this.#send({ type: 'answer', call_id: callId, sdp });
  }

  /** Hangs up (or declines) `callId` (default: every call). */
  hangup(callId) {
    const ids = callId ? [callId] : [...this.calls.keys()];
    for (const id of ids) {
      this.#send({ type: 'hangup', call_id: id });
      this.#end(id, 'local');
    }
  }

  /** Sends DTMF digits on `callId` (default: the first call) as RFC 4733 events. */
  dtmf(digits, callId) {
    const call = callId ? this.calls.get(callId) : this.calls.values().next().value;
    const sender = call?.pc.getSenders().find((s) => s.track?.kind === 'audio');
    if (!sender?.dtmf?.canInsertDTMF) return false;
    sender.dtmf.insertDTMF(digits, 120, 70);
    return true;
  }

  /** Mutes (or unmutes) the microphone on every call. */
  mute(on = true) {
    for (const c of this.calls.values()) c.stream.getAudioTracks().forEach((t) => { t.enabled = !on; });
  }

  /** A summary of `callId`'s WebRTC statistics (default: the first call). */
  async stats(callId) {
    const call = callId ? this.calls.get(callId) : this.calls.values().next().value;
    if (!call) return null;
    const out = { inbound: null, outbound: null, pair: null };
    const report = await call.pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.inbound = { packetsReceived: s.packetsReceived, bytesReceived: s.bytesReceived,
          packetsLost: s.packetsLost, jitter: s.jitter, audioLevel: s.audioLevel,
          totalAudioEnergy: s.totalAudioEnergy };
      } else if (s.type === 'outbound-rtp' && s.kind === 'audio') {
        out.outbound = { packetsSent: s.packetsSent, bytesSent: s.bytesSent };
      }
    });
    // The pair in use: the transport's selected pair, else a nominated, succeeded one.
    let sel = null;
    report.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) sel = byId.get(s.selectedCandidatePairId); });
    if (!sel) report.forEach((s) => { if (!sel && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') sel = s; });
    if (sel) {
      const l = byId.get(sel.localCandidateId), r = byId.get(sel.remoteCandidateId);
      out.pair = { local: l && `${l.address}:${l.port}`, remote: r && `${r.address}:${r.port}`,
        localType: l && l.candidateType, remoteType: r && r.candidateType, rtt: sel.currentRoundTripTime };
    }
    return out;
  }

  close() { this.ws?.close(); }

  #emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  #send(msg) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  async #media() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    } catch (e) {
      this.#emit('error', { message: `microphone unavailable: ${e.message}` });
      throw e;
    }
    const pc = new RTCPeerConnection({
      iceServers: this.iceServers || this.serverIceServers || [],
      iceTransportPolicy: this.iceTransportPolicy,
    });
    stream.getAudioTracks().forEach((t) => pc.addTrack(t, stream));
    const audio = new Audio();
    audio.autoplay = true;
    pc.ontrack = (e) => { audio.srcObject = e.streams[0] || new MediaStream([e.track]); audio.play().catch(() => {}); };
    return { pc, stream, audio };
  }

  // The complete offer: ICE gathering done (instant on a LAN; the server does not trickle).
  async #offer(pc) {
    await pc.setLocalDescription(await pc.createOffer());
    if (pc.iceGatheringState !== 'complete') {
      await new Promise((resolve) => {
        const t = setTimeout(resolve, 5000);
        pc.addEventListener('icegatheringstatechange', () => {
          if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
        });
      });
    }
    return pc.localDescription.sdp;
  }

  #end(id, cause) {
    const c = this.calls.get(id);
    if (!c) return;
    this.calls.delete(id);
    c.pc.close();
    c.stream.getTracks().forEach((t) => t.stop());
    c.audio.srcObject = null;
    return cause;
  }

  async #onMessage(msg) {
    switch (msg.type) {
      case 'dialing':
        if (this.pendingDial) {
          const d = this.pendingDial;
          this.pendingDial = null;
          this.calls.set(msg.call_id, { pc: d.pc, stream: d.stream, audio: d.audio, state: 'dialing', live: msg.live_call_id || null });
          d.resolve(msg.call_id);
        }
        break;
      case 'sdp': {
        const c = this.calls.get(msg.call_id);
        if (c) await c.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        break;
      }
      case 'answered': {
        const c = this.calls.get(msg.call_id);
        if (c) c.state = 'answered';
        break;
      }
      case 'incoming':
        if (msg.live_call_id) this.live.set(msg.call_id, msg.live_call_id);
        break;
      case 'hungup':
        this.live.delete(msg.call_id);
        this.#end(msg.call_id, msg.cause);
        break;
      case 'error':
        if (this.pendingDial) {
          const d = this.pendingDial;
          this.pendingDial = null;
          d.pc.close();
          d.stream.getTracks().forEach((t) => t.stop());
          d.reject(new Error(msg.message));
        }
        break;
      default:
        break;
    }
    this.#emit(msg.type, msg);
  }
}
