/**
 * Switches the node's tor between publishing its own descriptor and leaving publication to
 * the cluster's publisher (tor-facts §1.9, §1.8, §8 item 1): `SETCONF
 * PublishHidServDescriptors=0` in clustered mode (every node, or a node's own
 * OPE-countered descriptor overwrites the merged one on the HSDirs), `=1` when the node is
 * alone and tor should publish for itself.
 *
 * Side effect (tor-facts §1.8): ANY SETCONF makes tor run `options_act()` →
 * `hs_config_service_all()` → rebuild every file-based service object. Descriptors, intro
 * points, replay caches and OB subcredentials are carried over, but the PoW state is NOT:
 * both PoW seeds are re-drawn and outstanding PoW solutions become invalid. That is
 * acceptable here because merged descriptors carry no `pow-params` (§3.7 A), so clients never
 * solve puzzles against a node's seed; a lone node that publishes itself re-uploads with its
 * new seed at once. To keep such resets rare, the switch reads the current value first
 * (`GETCONF PublishHidServDescriptors`) and only sends SETCONF on a real change.
 * OnionBalance-instance mode must already be in the torrc (§1.8 "gap when enabling OB at
 * runtime"); this switch never touches HiddenService* options.
 */
import type { Logger } from '../../adapters/log/logger.js';
import { DecodeError } from '../../core/errors.js';
import type { PublisherControl } from './control.js';

const OPTION = 'PublishHidServDescriptors';

/** Parse a `GETCONF PublishHidServDescriptors` reply line (`PublishHidServDescriptors=0|1`, or bare name = default 1). */
export function parsePublishSetting(line: string): boolean {
  if (line === OPTION) return true;
  const m = /^PublishHidServDescriptors=([01])$/i.exec(line);
  if (m === null) throw new DecodeError('TB_ERR_PUBLISHER_GETCONF', 'unexpected GETCONF PublishHidServDescriptors reply');
  return m[1] === '1';
}

/** SETCONF PublishHidServDescriptors on demand; see the module doc. */
export class PublishModeSwitch {
  readonly #control: Pick<PublisherControl, 'setConf' | 'request'>;
  readonly #log: Logger;
  #publishing: boolean | undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(o: { readonly control: Pick<PublisherControl, 'setConf' | 'request'>; readonly logger: Logger }) {
    this.#control = o.control;
    this.#log = o.logger.child({ component: 'mode-switch' });
  }

  /** Tor's PublishHidServDescriptors as last read or set (undefined before the first call). */
  get torPublishes(): boolean | undefined {
    return this.#publishing;
  }

  /** Forget the cached value (call after tor restarted: it reads its torrc again). */
  invalidate(): void {
    this.#publishing = undefined;
  }

  /**
   * clustered = true → PublishHidServDescriptors 0; false → 1. Calls are serialized; a
   * SETCONF is sent only if tor's value differs.
   */
  setClustered(clustered: boolean): Promise<void> {
    const next = this.#chain.then(() => this.#apply(!clustered));
    this.#chain = next.catch(() => undefined);
    return next;
  }

  /**
   * Let tor upload its own descriptors once, now, then restore the clustered setting: `SETCONF
   * PublishHidServDescriptors=1` (always sent, even if tor already publishes: on a
   * PoW-enabled service every SETCONF re-draws the PoW seeds, which makes tor schedule an
   * upload of BOTH its descriptors at once — docs/DESIGN.md "Rotation-safe intro points"),
   * run `during` (it waits for what it needs from that upload), then SETCONF back to the
   * value tor had before. Serialized with {@link setClustered}; resolves with `during`'s
   * result, or rejects with its error after restoring.
   */
  pulse<T>(during: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.#publishing === undefined) {
        const reply = await this.#control.request(`GETCONF ${OPTION}`);
        this.#publishing = parsePublishSetting(reply.lines[0]?.text ?? '');
      }
      const restore = this.#publishing;
      await this.#control.setConf([[OPTION, '1']]);
      this.#publishing = true;
      try {
        return await during();
      } finally {
        if (!restore) {
          await this.#control.setConf([[OPTION, '0']]);
          this.#publishing = false;
        }
      }
    };
    const next = this.#chain.then(run);
    this.#chain = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  async #apply(publish: boolean): Promise<void> {
    if (this.#publishing === undefined) {
      const reply = await this.#control.request(`GETCONF ${OPTION}`);
      this.#publishing = parsePublishSetting(reply.lines[0]?.text ?? '');
    }
    if (this.#publishing === publish) return;
    await this.#control.setConf([[OPTION, publish ? '1' : '0']]);
    this.#publishing = publish;
    this.#log.info({ publish }, publish ? 'tor publishes its own descriptors' : 'tor stopped publishing; the cluster publisher does');
  }
}
