"""The options of the agents (``agent=...``, nnexp/rl/), checked without torch or Gymnasium."""

from __future__ import annotations

from typing import Any

from nnexp.options import check, check_bool, check_choice, check_int, finite, takes

ENVS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1")  # nnexp/data/rl_envs.py's ENVS
# every agent's keys: the environment, the budget, the evaluations, when it counts as solved and stops
COMMON = ("env", "max_steps", "total_steps", "eval_every", "eval_episodes", "final_eval_episodes", "threshold",
          "stop_after", "restore_best", "gamma")


def _fraction(key: str, value: Any, *, open_low: bool = False) -> None:
    ok = finite(value) and (value > 0 if open_low else value >= 0) and value <= 1
    check(key, value, ok, f"a number in {'(0' if open_low else '[0'}, 1]")


def common(*, env: Any, max_steps: Any, total_steps: Any, eval_every: Any, eval_episodes: Any,
           final_eval_episodes: Any, threshold: Any, stop_after: Any, restore_best: Any, gamma: Any) -> None:
    check_choice("env", env, ENVS)
    check_int("max_steps", max_steps, 1, "steps per episode; null: the environment's own limit", null=True)
    check_int("total_steps", total_steps, 1, "environment steps")
    check_int("eval_every", eval_every, 1, "environment steps between evaluations")
    check_int("eval_episodes", eval_episodes, 1, "episodes per evaluation")
    check_int("final_eval_episodes", final_eval_episodes, 0, "episodes of the final evaluation; 0: none")
    check("threshold", threshold, threshold is None or finite(threshold),
          "null (the environment's reward threshold) or a number")
    check_int("stop_after", stop_after, 0, "evaluations in a row at the threshold that end the run; 0: never")
    check_bool("restore_best", restore_best)
    check("gamma", gamma, finite(gamma) and 0 <= gamma <= 1, "a number in [0, 1]")


def _discrete(env: Any, needs: str) -> None:
    """Pendulum-v1 is the one task of ENVS with a continuous action; ``needs`` says why this agent cannot."""
    if env == "Pendulum-v1":
        raise ValueError(f"env=Pendulum-v1 has a continuous action (a torque); {needs}: "
                         "CartPole-v1, Acrobot-v1 or MountainCar-v0")


def _coef(key: str, value: Any) -> None:
    check(key, value, finite(value) and value >= 0, "a number >= 0")


def _clip_norm(value: Any) -> None:
    check("max_grad_norm", value, value is None or (finite(value) and value > 0), "null (no clipping) or a number > 0")


DQN_KEYS = ("buffer_size", "learning_starts", "batch_size", "train_every", "gradient_steps", "target_update",
            "tau", "epsilon_start", "epsilon_end", "epsilon_fraction", "double", "max_grad_norm")


def dqn(*, env: Any, max_steps: Any, total_steps: Any, eval_every: Any, eval_episodes: Any,
        final_eval_episodes: Any, threshold: Any, stop_after: Any, restore_best: Any, gamma: Any,
        buffer_size: Any, learning_starts: Any, batch_size: Any, train_every: Any, gradient_steps: Any,
        target_update: Any, tau: Any, epsilon_start: Any, epsilon_end: Any, epsilon_fraction: Any, double: Any,
        max_grad_norm: Any) -> None:
    common(env=env, max_steps=max_steps, total_steps=total_steps, eval_every=eval_every,
           eval_episodes=eval_episodes, final_eval_episodes=final_eval_episodes, threshold=threshold,
           stop_after=stop_after, restore_best=restore_best, gamma=gamma)
    _discrete(env, "DQN needs discrete actions")
    check_int("buffer_size", buffer_size, 1, "transitions")
    check_int("learning_starts", learning_starts, 0, "environment steps before the first update")
    check_int("batch_size", batch_size, 1, "transitions per update")
    check_int("train_every", train_every, 1, "environment steps between updates")
    check_int("gradient_steps", gradient_steps, 1, "updates each time")
    check_int("target_update", target_update, 1, "environment steps between target-network updates")
    _fraction("tau", tau, open_low=True)
    _fraction("epsilon_start", epsilon_start)
    _fraction("epsilon_end", epsilon_end)
    _fraction("epsilon_fraction", epsilon_fraction)
    check_bool("double", double)
    _clip_norm(max_grad_norm)


takes("nnexp.rl.dqn.DQN", COMMON + DQN_KEYS, dqn)


REINFORCE_KEYS = ("baseline", "episodes_per_update", "value_coef", "value_steps", "entropy_coef", "max_grad_norm")


def reinforce(*, env: Any, max_steps: Any, total_steps: Any, eval_every: Any, eval_episodes: Any,
              final_eval_episodes: Any, threshold: Any, stop_after: Any, restore_best: Any, gamma: Any,
              baseline: Any, episodes_per_update: Any, value_coef: Any, value_steps: Any, entropy_coef: Any,
              max_grad_norm: Any) -> None:
    common(env=env, max_steps=max_steps, total_steps=total_steps, eval_every=eval_every,
           eval_episodes=eval_episodes, final_eval_episodes=final_eval_episodes, threshold=threshold,
           stop_after=stop_after, restore_best=restore_best, gamma=gamma)
    _discrete(env, "REINFORCE's policy is categorical")
    check_bool("baseline", baseline)
    check_int("episodes_per_update", episodes_per_update, 2,
              "whole episodes per update (at least 2: the gradient's variance is measured across them)")
    _coef("value_coef", value_coef)
    check_int("value_steps", value_steps, 1, "gradient steps of the baseline per update, the first with the policy's")
    _coef("entropy_coef", entropy_coef)
    _clip_norm(max_grad_norm)


takes("nnexp.rl.pg.Reinforce", COMMON + REINFORCE_KEYS, reinforce)

PPO_KEYS = ("rollout_steps", "update_epochs", "minibatch_size", "clip", "gae_lambda", "value_coef", "entropy_coef",
            "normalize_advantages", "target_kl", "max_grad_norm")


def ppo(*, env: Any, max_steps: Any, total_steps: Any, eval_every: Any, eval_episodes: Any,
        final_eval_episodes: Any, threshold: Any, stop_after: Any, restore_best: Any, gamma: Any,
        rollout_steps: Any, update_epochs: Any, minibatch_size: Any, clip: Any, gae_lambda: Any, value_coef: Any,
        entropy_coef: Any, normalize_advantages: Any, target_kl: Any, max_grad_norm: Any) -> None:
    common(env=env, max_steps=max_steps, total_steps=total_steps, eval_every=eval_every,
           eval_episodes=eval_episodes, final_eval_episodes=final_eval_episodes, threshold=threshold,
           stop_after=stop_after, restore_best=restore_best, gamma=gamma)
    _discrete(env, "PPO's policy is categorical")
    check_int("rollout_steps", rollout_steps, 2, "environment steps collected between updates")
    check_int("update_epochs", update_epochs, 1, "passes over each rollout")
    check_int("minibatch_size", minibatch_size, 1, "transitions per minibatch")
    _fraction("clip", clip, open_low=True)
    _fraction("gae_lambda", gae_lambda)
    _coef("value_coef", value_coef)
    _coef("entropy_coef", entropy_coef)
    check_bool("normalize_advantages", normalize_advantages)
    check("target_kl", target_kl, target_kl is None or (finite(target_kl) and target_kl > 0),
          "null (every pass) or a number > 0")
    _clip_norm(max_grad_norm)
    if minibatch_size > rollout_steps:
        raise ValueError(f"minibatch_size={minibatch_size} is more than rollout_steps={rollout_steps}: the "
                         "minibatches are cut from the rollout")


takes("nnexp.rl.pg.PPO", COMMON + PPO_KEYS, ppo)

MPC_KEYS = ("target", "buffer_size", "random_steps", "refit_every", "fit_epochs", "batch_size", "planner",
            "choose", "horizon", "candidates", "cem_iterations", "elites")


def mpc(*, env: Any, max_steps: Any, total_steps: Any, eval_every: Any, eval_episodes: Any,
        final_eval_episodes: Any, threshold: Any, stop_after: Any, restore_best: Any, gamma: Any, target: Any,
        buffer_size: Any, random_steps: Any, refit_every: Any, fit_epochs: Any, batch_size: Any, planner: Any,
        choose: Any, horizon: Any, candidates: Any, cem_iterations: Any, elites: Any) -> None:
    common(env=env, max_steps=max_steps, total_steps=total_steps, eval_every=eval_every,
           eval_episodes=eval_episodes, final_eval_episodes=final_eval_episodes, threshold=threshold,
           stop_after=stop_after, restore_best=restore_best, gamma=gamma)
    check_choice("target", target, ("delta", "next"))
    check_int("buffer_size", buffer_size, 1, "transitions kept for refitting the model (the last ones)")
    check_int("random_steps", random_steps, 1, "environment steps of random actions before the first plan")
    check_int("refit_every", refit_every, 1, "environment steps between refits of the model")
    check_int("fit_epochs", fit_epochs, 1, "passes over the data at each refit")
    check_int("batch_size", batch_size, 1, "transitions per minibatch")
    check_choice("planner", planner, ("random", "cem"))
    check_choice("choose", choose, ("mean", "best"))
    if choose == "mean" and env == "Pendulum-v1":
        raise ValueError("choose=mean averages the sequences that begin with each action: it needs discrete "
                         "actions; env=Pendulum-v1 has a continuous one (a torque): choose=best")
    check_int("horizon", horizon, 1, "steps each plan looks ahead")
    check_int("candidates", candidates, 2, "action sequences per plan (per CEM iteration)")
    check_int("cem_iterations", cem_iterations, 1, "rounds of refitting the sampling distribution (planner=cem)")
    check_int("elites", elites, 1, "best sequences the distribution is refitted to (planner=cem)")
    if elites > candidates:
        raise ValueError(f"elites={elites} is more than candidates={candidates}: the elites are the best of them")


takes("nnexp.rl.mpc.MPC", COMMON + MPC_KEYS, mpc)
