import { expect, test } from '../support/test';
import { USERS } from '../support/constants';
import { environment, signIn } from '../support/console';

// Runs after the journey (03), in which both slots ran a release.

test('a deployer reads what a slot printed; a viewer is not offered it', async ({ page }) => {
  await signIn(page, USERS.dana);
  const env = environment(page);
  await env.getByTestId('show-output-blue').click();
  const output = env.getByTestId('slot-output');
  await expect(output).toHaveAttribute('data-slot', 'blue');
  await expect(output).toContainText(/switchyard-demo \S+ listening on 127\.0\.0\.1:\d+/);
  await env.getByTestId('show-output-green').click();
  await expect(output).toHaveAttribute('data-slot', 'green');
  await expect(output).toContainText('listening on');

  await page.context().clearCookies();
  await signIn(page, USERS.victor);
  await expect(environment(page).getByTestId('show-output-blue')).toHaveCount(0);
});
