"""Relevance on real titles and abstracts (../shared/data/papers.jsonl): for real interests,
the papers that must be found, and those that must not."""

from __future__ import annotations

import re
from functools import cache

import pytest

from digest.match import taste
from digest.match.acronyms import curated, learn
from digest.match.engine import InterestMatcher
from digest.match.index import Index, PaperDoc
from digest.search import file_papers, search
from tests.kit.env import shared_papers


@cache
def _index() -> Index:
    papers, problems = file_papers(shared_papers())
    assert not problems
    return Index(papers)


def titles(line: str) -> set[str]:
    index = _index()
    return {found.paper.title for found in search(index.papers, line, index=index)}


# interest -> every title it must find (the whole list where `exact`), and titles it must not.
CASES: list[tuple[str, set[str], set[str], bool]] = [
    (  # acronym <-> long form, plural acronyms in titles
        "RAG",
        {
            "The Chronicles of RAG: The Retriever, the Chunk and the Generator",
            "APE: Faster and Longer Context-Augmented Generation via Adaptive Parallel Encoding",
            "Controllable Context Sensitivity and the Knob Behind It",
        },
        set(),
        True,
    ),
    (  # an acronym learned from the corpus: "physics-informed neural networks (PINNs)"
        "PINN",
        {
            "Physics-Informed Neural Networks for One-Dimensional Quantum Well Problems",
            "FlamePINN-1D: Physics-informed neural networks to solve forward and inverse "
            "problems of 1D laminar flames",
        },
        set(),
        True,
    ),
    (  # LaTeX, Greek letters and "muP" are one word
        "$\\mu$P",
        {
            "u-μP: The Unit-Scaled Maximal Update Parametrization",
            "μLO: Compute-Efficient Meta-Generalization of Learned Optimizers",
        },
        {"Flow Matching for Generative Modeling"},
        False,
    ),
    (  # state space models, by acronym
        "SSM",
        {
            "On the Parameterization and Initialization of Diagonal State Space Models",
            "Serpent: Scalable and Efficient Image Restoration via Multi-scale Structured State "
            "Space Models",
        },
        {"Layerwise Recurrent Router for Mixture-of-Experts"},
        False,
    ),
    (  # "low-rank adaptation", hyphenated in the table, spaced in titles
        "LoRA",
        {
            "Hydra: Multi-head Low-rank Adaptation for Parameter Efficient Fine-tuning",
            "RandLoRA: Full-rank parameter-efficient fine-tuning of large models",
        },
        {"Flow Matching for Generative Modeling"},
        False,
    ),
    (  # hyphenation inside a quoted phrase, restricted to titles
        'title:"in-context learning"',
        {
            "Efficient Prompting via Dynamic In-Context Learning",
            "General-Purpose In-Context Learning by Meta-Learning Transformers",
            "How does representation impact in-context learning: A exploration on a synthetic task",
            "In-Context Learning through the Bayesian Prism",
            "Revisiting In-context Learning Inference Circuit in Large Language Models",
            "Revisiting VerilogEval: Newer LLMs, In-Context Learning, and Specification-to-RTL "
            "Tasks",
            "SINC: Self-Supervised In-Context Learning for Vision-Language Tasks",
        },
        set(),
        True,
    ),
    (  # joined and hyphenated spellings agree
        "incontext",
        {"In-Context Learning through the Bayesian Prism"},
        set(),
        False,
    ),
    (  # exclusion by field
        "KD -title:distillation",
        {"Network Pruning via Transformable Architecture Search"},
        {
            "m2mKD: Module-to-Module Knowledge Distillation for Modular Transformers",
            "PANDA: Prompt Transfer Meets Knowledge Distillation for Efficient Model Adaptation",
        },
        False,
    ),
    (  # phrase with an excluded acronym that also excludes its long form
        '"mixture of experts" -LLM',
        {"GShard: Scaling Giant Models with Conditional Computation and Automatic Sharding"},
        {
            "Skywork-MoE: A Deep Dive into Training Techniques for Mixture-of-Experts Language "
            "Models",
            "Rethinking Mixture-of-Agents: Is Mixing Different Large Language Models Beneficial?",
        },
        False,
    ),
    (  # British spelling, plural acronym in a field
        "quantisation title:LLMs",
        {
            "AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration",
            "BAQ: Efficient Bit Allocation Quantization for Large Language Models",
        },
        {"EQ-Net: Elastic Quantization Neural Networks"},
        False,
    ),
    (  # an exact phrase
        '"speculative decoding"',
        {
            "Accelerating LLM Inference with Staged Speculative Decoding",
            "Improving Multi-candidate Speculative Decoding",
            "Kangaroo: Lossless Self-Speculative Decoding via Double Early Exiting",
            "Speculative Decoding and Beyond: An In-Depth Survey of Techniques",
        },
        {"Flow Matching for Generative Modeling"},
        False,
    ),
    (  # OR in a field, with an exclusion
        "title:(pruning OR sparsity) -LLM",
        {
            "Layer-adaptive sparsity for the Magnitude-based Pruning",
            "Robust Pruning at Initialization",
            "Sparsity-Constrained Optimal Transport",
        },
        {"CATS: Contextually-Aware Thresholding for Sparsity in Large Language Models"},
        False,
    ),
    (  # stemming: "networks" = "network", and the GNN acronym finds the same papers
        "graph neural network",
        {
            "Evaluating Deep Graph Neural Networks",
            "Forward Learning of Graph Neural Networks",
            "When to Pre-Train Graph Neural Networks? From Data Generation Perspective!",
        },
        {"Flow Matching for Generative Modeling"},
        False,
    ),
    (
        "GNN",
        {
            "Evaluating Deep Graph Neural Networks",
            "Improving Graph Neural Networks with Learnable Propagation Operators",
        },
        {"Robust Pruning at Initialization"},
        False,
    ),
    (
        '"flow matching"',
        {
            "Flow Matching for Generative Modeling",
            "Accelerating High-Fidelity Waveform Generation via Adversarial Flow Matching "
            "Optimization",
        },
        {
            "Neural Flow Diffusion Models: Learnable Forward Process for Improved Diffusion "
            "Modelling"
        },
        False,
    ),
    (  # "large language model" quoted finds "LLMs" in titles
        '"large language model" unlearning',
        {
            "Reversing the Forget-Retain Objectives: An Efficient LLM Unlearning Framework from "
            "Logit Difference"
        },
        set(),
        False,
    ),
    (
        "hallucination -vision",
        {"The Chronicles of RAG: The Retriever, the Chunk and the Generator"},
        {
            "AUTOHALLUSION: Automatic Generation of Hallucination Benchmarks for Vision-Language "
            "Models"
        },
        False,
    ),
]


@pytest.mark.parametrize(("line", "wanted", "unwanted", "exact"), CASES, ids=[c[0] for c in CASES])
def test_real_interests_find_what_they_should(
    line: str, wanted: set[str], unwanted: set[str], exact: bool
) -> None:
    found = titles(line)
    assert wanted <= found, f"missing: {wanted - found}"
    assert not unwanted & found
    if exact:
        assert found == wanted


def test_acronym_and_long_form_find_the_same_papers() -> None:
    assert titles("RAG") == titles('"retrieval augmented generation"')
    assert titles("LLMs") == titles("llm")
    assert titles("in-context") == titles('"in context"') | titles("incontext")


def test_the_title_ranks_first_and_matched_terms_are_reported() -> None:
    found = search(_index().papers, '"speculative decoding" OR medusa', index=_index())
    assert "Speculative Decoding" in found[0].paper.title
    assert '"speculative decoding"' in found[0].matched
    medusa = next(f for f in found if f.paper.title.startswith("Medusa"))
    assert "medusa" in medusa.matched


def test_a_run_of_words_is_one_phrase() -> None:
    # The three words appear in 24 papers; as one idea, in 6, every one about SSMs.
    assert len(titles("state AND space AND models")) == 24
    found = titles("state space models")
    assert found == titles("SSM") == titles("state-space model")
    assert "On the Parameterization and Initialization of Diagonal State Space Models" in found
    assert len(found) == 6


def test_every_acronym_and_long_form_find_the_same_papers() -> None:
    # Over the whole curated table and every pair learned from these papers.
    index = _index()
    differ = []
    for acronym, forms in index.acronyms.items():
        expected = titles(acronym.upper())
        for form in forms:
            if titles(" ".join(form)) != expected:
                differ.append((acronym, " ".join(form)))
    assert differ == []
    assert len(index.acronyms) > len(curated()) + 100  # learned pairs were checked too


def test_a_learned_acronym_does_not_pull_in_the_common_word() -> None:
    papers = [
        PaperDoc(1, "CATS", "Contextually Aware Thresholding for Sparsity (CATS) prunes."),
        PaperDoc(2, "Pets", "Cats and dogs, classified from photos."),
        PaperDoc(3, "Later", "CATS, again, with contextually aware thresholding for sparsity."),
    ]
    hits = InterestMatcher().match(papers, ["contextually aware thresholding for sparsity", "CATS"])
    # "Cats" is an ordinary word of this batch: CATS is not learned, each line finds its own.
    assert [h.paper_id for h in hits["contextually-aware-thresholding-for-sparsity"]] == [1, 3]
    assert sorted(h.paper_id for h in hits["cats"]) == [1, 2, 3]
    # Learned where nothing writes the word: found only in capitals, never as a word.
    index = Index([papers[0], papers[2], PaperDoc(4, "Zoo", "CATs: a zoo guide.")])
    assert index.acronyms["cats"] and index.family(("cats",)) is not None
    hits = InterestMatcher().match(index.papers, ["contextually aware thresholding for sparsity"])
    assert [h.paper_id for h in hits["contextually-aware-thresholding-for-sparsity"]] == [1, 3]
    # An acronym the papers also write as a lower-case word is not learned at all.
    assert "cats" not in learn(["Thresholding Sparsity (CATS).", "cats and dogs"])


def test_words_do_not_drift_to_other_words() -> None:
    general = titles("general")
    assert len(general) < 60  # Snowball's "general" found 128 of the papers
    texts = {p.title: f"{p.title} {p.abstract}" for p in _index().papers}
    assert all(re.search(r"\bgenerals?\b", texts[title], re.IGNORECASE) for title in general)
    assert titles("generalization") == titles("generalisation") == titles("generalize")
    papers = [PaperDoc(1, "Generative models", ""), PaperDoc(2, "Text generation", "")]
    hits = InterestMatcher().match(papers, ["generative", "generation", "generations"])
    assert [[h.paper_id for h in hits[key]] for key in hits] == [[1], [2], [2]]
    assert titles("pruning") == titles("pruned")
    assert titles("quantization") == titles("quantized")


def test_the_title_holding_the_phrase_ranks_first() -> None:
    index = _index()
    top = search(index.papers, "mixture of experts", 10, index=index)
    assert all(
        "mixture of expert" in " ".join(f.paper.title.lower().replace("-", " ").split())
        or "moe" in f.paper.title.lower()
        for f in top
    )


def test_like_finds_papers_similar_to_a_stored_one() -> None:
    index = _index()
    seed = next(p for p in index.papers if p.title.startswith("DeepSeekMoE"))
    found = search(index.papers, f"like:{seed.id}", index=index)
    assert seed.title not in {f.paper.title for f in found}  # never the seed itself
    assert 20 <= len(found) <= 80
    moe = sum(
        "expert" in f.paper.title.lower() or "moe" in f.paper.title.lower() for f in found[:10]
    )
    assert moe >= 8
    surveys = titles(f"like:{seed.id} -survey")
    assert "A Survey on Inference Optimization Techniques for Mixture of Experts Models" in {
        f.paper.title for f in found
    }
    assert (
        "A Survey on Inference Optimization Techniques for Mixture of Experts Models" not in surveys
    )
    assert titles("like:9999999") == set()  # a paper nobody has stored matches nothing


def test_an_extra_paper_like_a_disliked_one_is_held_back() -> None:
    liked = {1: {10: 0.9, 11: 0.9}, 2: {10: 0.8, 11: 0.8}}
    assert [paper for paper, _, _ in taste.extras(liked, set(), lambda _: True, {})] == [10, 11]
    disliked = {3: {11: 1.0}}  # 11 is as like the paper the reader did not want as can be
    found = taste.extras(liked, set(), lambda _: True, disliked)
    assert [(paper, seed) for paper, seed, _ in found] == [(10, 1)]
    assert found[0][2] == pytest.approx(0.85)
