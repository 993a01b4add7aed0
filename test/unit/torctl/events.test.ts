import { describe, expect, it } from 'vitest';
import { ReplyParser, type ControlEvent } from '../../../src/core/torctl/reply.js';
import { parseBootstrap, parseBootstrapPhase, parseCirc, parseHsDesc, parseHsDescContent, parseRelayRef, parseStatusEvent } from '../../../src/core/torctl/events.js';

const ADDR = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd';
const FP = '9F1A8B2C3D4E5F60718293A4B5C6D7E8F9012345';
const BLINDED = 'mW7dCKMFD6Q8lR+zJx/3A2kC9LrHdS0cZpgpQh6fTq4';
const INDEX = 'A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90';
const fmt = expect.objectContaining({ code: 'TB_ERR_TOR_EVENT_FORMAT' });

/** Run wire text through the real reply parser to get a ControlEvent. */
function event(wire: string): ControlEvent {
  const items = new ReplyParser().feed(new TextEncoder().encode(wire));
  const it0 = items[0];
  if (items.length !== 1 || it0?.kind !== 'event') throw new Error('expected exactly one event');
  return it0.event;
}

describe('HS_DESC (formats from tor-facts §1.2)', () => {
  it('CREATED', () => {
    const e = parseHsDesc(event(`650 HS_DESC CREATED ${ADDR} UNKNOWN UNKNOWN ${BLINDED}\r\n`));
    expect(e).toMatchObject({ action: 'CREATED', address: ADDR, authType: 'UNKNOWN', hsDir: undefined, descriptorId: BLINDED });
  });

  it('UPLOAD with HSDIR_INDEX', () => {
    const e = parseHsDesc(event(`650 HS_DESC UPLOAD ${ADDR} UNKNOWN $${FP}~relay3 ${BLINDED} HSDIR_INDEX=${INDEX}\r\n`));
    expect(e).toMatchObject({ action: 'UPLOAD', hsDir: { fingerprint: FP, nickname: 'relay3' }, descriptorId: BLINDED, hsDirIndex: INDEX });
  });

  it('UPLOADED (no descriptor id)', () => {
    const e = parseHsDesc(event(`650 HS_DESC UPLOADED ${ADDR} UNKNOWN $${FP}~node\r\n`));
    expect(e).toMatchObject({ action: 'UPLOADED', address: ADDR, hsDir: { fingerprint: FP, nickname: 'node' }, descriptorId: undefined, reason: undefined });
  });

  it('FAILED upload with REASON=UPLOAD_REJECTED', () => {
    const e = parseHsDesc(`HS_DESC FAILED ${ADDR} NO_AUTH $${FP}~relay1 ${BLINDED} REASON=UPLOAD_REJECTED`);
    expect(e).toMatchObject({ action: 'FAILED', authType: 'NO_AUTH', reason: 'UPLOAD_REJECTED', descriptorId: BLINDED });
  });

  it('REQUESTED, RECEIVED, FAILED NOT_FOUND', () => {
    expect(parseHsDesc(`HS_DESC REQUESTED ${ADDR} NO_AUTH $${FP}~r ${BLINDED} HSDIR_INDEX=${INDEX}`)).toMatchObject({ action: 'REQUESTED', hsDirIndex: INDEX });
    expect(parseHsDesc(`HS_DESC RECEIVED ${ADDR} NO_AUTH $${FP}~r ${BLINDED}`)).toMatchObject({ action: 'RECEIVED' });
    expect(parseHsDesc(`HS_DESC FAILED ${ADDR} NO_AUTH $${FP} ${BLINDED} REASON=NOT_FOUND`)).toMatchObject({
      reason: 'NOT_FOUND',
      hsDir: { fingerprint: FP, nickname: undefined },
    });
    expect(parseHsDesc(`HS_DESC FAILED UNKNOWN NO_AUTH UNKNOWN UNKNOWN REASON=QUERY_NO_HSDIR`)).toMatchObject({ address: undefined, hsDir: undefined, descriptorId: undefined });
  });

  it('rejects malformed HS_DESC events', () => {
    for (const bad of [
      `HS_DESC`,
      `HS_DESC BOGUS ${ADDR} NO_AUTH UNKNOWN`,
      `HS_DESC UPLOADED notanaddress NO_AUTH UNKNOWN`,
      `HS_DESC UPLOADED ${ADDR} NO_AUTH $1234~x`,
      `HS_DESC UPLOADED ${ADDR} NO_AUTH $${FP}~x short`,
      `HS_DESC UPLOAD ${ADDR} UNKNOWN $${FP}~r ${BLINDED} HSDIR_INDEX=zz`,
      `HS_DESC UPLOAD ${ADDR} UNKNOWN $${FP}~r ${BLINDED} extra more`,
      `HS_DESCX UPLOAD`,
      `CIRC 1 BUILT`,
    ]) {
      expect(() => parseHsDesc(bad), bad).toThrow(fmt);
    }
  });
});

describe('HS_DESC_CONTENT', () => {
  it('parses the data block and restores the final newline', () => {
    const e = event(`650+HS_DESC_CONTENT ${ADDR} ${BLINDED} $${FP}~hsdir\r\nhs-descriptor 3\r\n..dot\r\nsignature x\r\n.\r\n650 OK\r\n`);
    expect(e.type).toBe('HS_DESC_CONTENT');
    expect(parseHsDescContent(e)).toEqual({
      address: ADDR,
      descriptorId: BLINDED,
      hsDir: { fingerprint: FP, nickname: 'hsdir' },
      descriptor: 'hs-descriptor 3\n.dot\nsignature x\n',
    });
  });

  it('gives an empty descriptor on failure', () => {
    const e = event(`650+HS_DESC_CONTENT ${ADDR} ${BLINDED} $${FP}~hsdir\r\n.\r\n650 OK\r\n`);
    expect(parseHsDescContent(e).descriptor).toBe('');
  });

  it('rejects malformed lines', () => {
    expect(() => parseHsDescContent(event(`650+HS_DESC_CONTENT ${ADDR}\r\n.\r\n650 OK\r\n`))).toThrow(fmt);
    expect(() => parseHsDescContent(event(`650+HS_DESC_CONTENT ${ADDR} !!! $${FP}\r\n.\r\n650 OK\r\n`))).toThrow(fmt);
  });
});

describe('STATUS_CLIENT BOOTSTRAP', () => {
  it('parses progress, tag and quoted summary', () => {
    const e = event('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=75 TAG=enough_dirinfo SUMMARY="Loaded enough directory info to build circuits"\r\n');
    expect(parseBootstrap(e)).toEqual({
      severity: 'NOTICE',
      progress: 75,
      tag: 'enough_dirinfo',
      summary: 'Loaded enough directory info to build circuits',
      warning: undefined,
      reason: undefined,
    });
    expect(parseBootstrap('STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"')?.progress).toBe(100);
  });

  it('parses a bootstrap warning', () => {
    const b = parseBootstrap('STATUS_CLIENT WARN BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay" WARNING="Connection refused" REASON=CONNECTREFUSED COUNT=1 RECOMMENDATION=ignore HOSTID="AAA" HOSTADDR="127.0.0.1:5000"');
    expect(b).toMatchObject({ severity: 'WARN', warning: 'Connection refused', reason: 'CONNECTREFUSED' });
  });

  it('parses GETINFO status/bootstrap-phase values', () => {
    expect(parseBootstrapPhase('NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY="Starting"')).toMatchObject({ progress: 0, tag: 'starting', summary: 'Starting' });
    expect(() => parseBootstrapPhase('NOTICE CIRCUIT_ESTABLISHED')).toThrow(fmt);
  });

  it('returns undefined for other STATUS_CLIENT actions and rejects bad progress', () => {
    expect(parseBootstrap('STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED')).toBeUndefined();
    expect(parseStatusEvent('STATUS_GENERAL WARN CLOCK_SKEW SKEW=-20 SOURCE=CONSENSUS').args.get('SKEW')).toBe('-20');
    expect(() => parseBootstrap('STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=101 TAG=done')).toThrow(fmt);
    expect(() => parseBootstrap('STATUS_CLIENT NOTICE BOOTSTRAP TAG=done')).toThrow(fmt);
    expect(() => parseStatusEvent('STATUS_CLIENT')).toThrow(fmt);
  });
});

describe('CIRC', () => {
  it('parses an HS service intro circuit', () => {
    const c = parseCirc(
      event(
        `650 CIRC 12 BUILT $${FP}~guard,$${'A'.repeat(40)}~mid,$${'B'.repeat(40)}~intro BUILD_FLAGS=IS_INTERNAL,NEED_CAPACITY,NEED_UPTIME PURPOSE=HS_SERVICE_INTRO HS_STATE=HSSI_ESTABLISHED REND_QUERY=${ADDR} TIME_CREATED=2025-11-24T01:02:03.456789\r\n`,
      ),
    );
    expect(c).toMatchObject({
      id: '12',
      status: 'BUILT',
      buildFlags: ['IS_INTERNAL', 'NEED_CAPACITY', 'NEED_UPTIME'],
      purpose: 'HS_SERVICE_INTRO',
      hsState: 'HSSI_ESTABLISHED',
      rendQuery: ADDR,
      timeCreated: '2025-11-24T01:02:03.456789',
    });
    expect(c.path.map((r) => r.nickname)).toEqual(['guard', 'mid', 'intro']);
  });

  it('parses a LAUNCHED circuit without a path and a CLOSED one with reasons', () => {
    expect(parseCirc('CIRC 7 LAUNCHED BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2025-11-24T01:02:03.000000').path).toEqual([]);
    expect(parseCirc(`CIRC 7 CLOSED $${FP}~a REASON=FINISHED REMOTE_REASON=DESTROYED SOCKS_USERNAME="u s"`)).toMatchObject({
      reason: 'FINISHED',
      remoteReason: 'DESTROYED',
      extra: new Map([['SOCKS_USERNAME', 'u s']]),
    });
  });

  it('rejects malformed CIRC events', () => {
    for (const bad of ['CIRC', 'CIRC x BUILT', 'CIRC 1 WEIRD', `CIRC 1 BUILT $${FP}~a,junk`, 'CIRC 1 BUILT a b c']) {
      expect(() => parseCirc(bad), bad).toThrow(fmt);
    }
  });
});

describe('relay refs', () => {
  it('accepts $FP~nick, $FP=nick and $FP', () => {
    expect(parseRelayRef(`$${FP.toLowerCase()}=n1`)).toEqual({ fingerprint: FP, nickname: 'n1' });
    expect(() => parseRelayRef(FP)).toThrow(fmt);
    expect(() => parseRelayRef(`$${FP}~`)).toThrow(fmt);
  });
});
