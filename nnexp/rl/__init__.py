"""Learning the four functions from reward: agents trained in a Gymnasium environment by ``nnexp train
agent=<name>`` (the optional ``rl`` extra).

The supervised ``rl_*`` datasets (nnexp/data/rl.py) fit f_V, f_P and f_M to a scripted controller's data;
an agent learns them from its own interaction, in the same runner (config groups, the model zoo, optimizers,
TensorBoard, ``summary.json``, checkpoints, sweeps, ``nnexp report``, claims):

- ``envs.py``: the environment, its spaces and reward threshold, the evaluation episodes;
- ``buffer.py``: the replay buffer, on the training device;
- ``agent.py``: what every agent shares (its keys, networks, random state) and the interface the loop calls;
- ``dqn.py``: f_V, DQN with a target network and the double-DQN option;
- ``pg.py``: f_P, REINFORCE (with a learned value baseline or without) and PPO;
- ``mpc.py``: f_M, a dynamics model learned from the agent's own steps and model-predictive control with it
  (random shooting or the cross-entropy method, re-planned every step);
- ``rewards.py``: the tasks' reward and end as batched functions of (state, action, next state), for planning;
- ``loop.py``: ``learn()``, the environment-step loop: rounds of ``eval_every`` steps, each ended by an
  evaluation, the metrics row of that round, early stopping at the reward threshold;
- ``runner.py``, ``recorder.py``: the run (``AgentRun``, what ``Run`` is for supervised training) and what it
  writes.
"""
