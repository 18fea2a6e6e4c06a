# The per-shard filter rules, one per step of danqing/steps.py without a rule of its own: each
# reads the kept rows of the previous enabled step (and the named upstream outputs its Step row
# lists), writes kept rows, drop records and counts, and runs the step's function of
# danqing.filters through scripts/filter_shard.py, with its Step's cluster request (mem_mb,
# runtime). What each step does: its function's docstring.
# Included after the rules whose outputs they read (rules.<producer>.output.<name>).
for _step in pipeline_steps.generated_rule_steps():

    rule:
        name:
            _step.name
        input:
            **filter_inputs(_step),
        output:
            **step_outputs(_step.name),
        log:
            step_log(_step.name),
        conda:
            f"../envs/{_step.env}.yaml"
        resources:
            **_step.requests,
        params:
            step=_step.name,
            cfg=config["filters"][_step.name],
        script:
            "../scripts/filter_shard.py"
