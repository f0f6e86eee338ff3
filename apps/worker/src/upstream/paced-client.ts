import type { ByByBGClient } from '../bybybg/client.ts';
import type { RateGovernor } from './governor.ts';

/**
 * The ByByBG client with every remove-bg request paced by the shared rate governor: the
 * request waits for its start slot after the tenant's budget reserved it (a refused call
 * takes no slot) and before the original is opened. A retry with the next key is a
 * request of its own and takes a slot of its own.
 */
export function pacedClient(client: ByByBGClient, governor: Pick<RateGovernor, 'acquire'>): ByByBGClient {
  return {
    ...client,
    removeBackground(input) {
      const { spend } = input;
      return client.removeBackground({
        ...input,
        spend: {
          async reserve() {
            await spend?.reserve();
            try {
              await governor.acquire();
            } catch (error) {
              await spend?.release();
              throw error;
            }
          },
          sent: () => spend?.sent(),
          release: async () => spend?.release(),
        },
      });
    },
  };
}
