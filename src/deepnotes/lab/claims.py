"""The claims of the learner's notes, C01-C83, with an English title and the notes' Korean term
(the notes themselves are not part of this repository: these entries are their claims); C84 and
C85 follow the notes' closing remark on ViT ("ViT evolved into Swin and PVT").

Experiments attach to these ids (docs/lab.md shows what each one measured); `deepnotes lab list`
shows every claim and whether it is implemented yet.
"""

from __future__ import annotations

from typing import NamedTuple


class Claim(NamedTuple):
    id: str
    title: str
    korean: str
    claim: str


CLAIMS: dict[str, Claim] = {c.id: c for c in (
    Claim("C01", "FC vs conv parameters", "가중치 공유", "An FC layer on an image needs n*h weights; a conv layer only k*k*C_in*C_out, shared"),
    Claim("C02", "Receptive field grows with depth", "수용 영역", "Receptive field grows with depth and kernel size"),
    Claim("C03", "Stacked 3x3 convolutions", "3x3 합성곱 쌓기", "Two 3x3 convs see 5x5 with 18C^2 instead of 25C^2 weights; three see 7x7 with 27C^2 vs 49C^2"),
    Claim("C04", "1x1 convolutions cut parameters", "1x1 합성곱", "1x1 convolutions cut Inception's parameters (channel reduction)"),
    Claim("C05", "Nonlinearity is needed", "비선형 활성화 함수", "Without a nonlinearity, stacked linear layers equal one linear layer (cannot learn XOR)"),
    Claim("C06", "Sigmoid saturates, gradients vanish", "기울기 소실", "Sigmoid saturates: derivative y(1-y) <= 0.25, gradients vanish with depth"),
    Claim("C07", "Zero initialization", "0 초기화 (대칭성 문제)", "Zero initialization makes every neuron of a layer learn the same thing"),
    Claim("C08", "Small random initialization", "작은 난수 초기화", "Small random init (0.01) makes deep activations collapse to 0"),
    Claim("C09", "Xavier for tanh, He for ReLU", "Xavier / He 초기화", "Xavier suits tanh, He suits ReLU (activation scale kept with depth)"),
    Claim("C10", "Sigmoid is not zero-centred", "0 중심이 아닌 출력 (지그재그)", "Sigmoid outputs are not zero-centred, so a neuron's weight gradients share one sign (zig-zag)"),
    Claim("C11", "Leaky ReLU vs ELU for negative inputs", "Leaky ReLU / ELU", "Leaky ReLU is unbounded for negative input; ELU saturates at -alpha"),
    Claim("C12", "Input normalization", "입력 정규화", "Normalizing inputs stabilizes and speeds training"),
    Claim("C13", "Batch normalization", "배치 정규화", "BatchNorm gives mean 0 / var 1 per feature and speeds training"),
    Claim("C14", "Dropout keeps expected activations", "드롭아웃", "Dropout with test-time scaling (or inverted dropout) keeps expected activations equal"),
    Claim("C15", "Learning rate and decay", "학습률 / 학습률 감소", "Large LR is fast but imprecise, small LR slow; decay gets both"),
    Claim("C16", "Momentum damps oscillation", "모멘텀", "Momentum damps oscillation"),
    Claim("C17", "AdaGrad vs RMSProp step size", "AdaGrad / RMSProp", "AdaGrad's accumulated squares shrink the step toward 0; RMSProp's moving average fixes it"),
    Claim("C18", "Degradation of deep plain nets", "잔차 학습", "Deep plain nets degrade (training error rises too, not overfitting); residual nets do not"),
    Claim("C19", "Skip connections keep gradients", "스킵 연결", "A skip connection keeps gradients alive (d/dx = f'(x) + 1)"),
    Claim("C20", "Transfer learning", "전이학습", "Transfer learning: retraining only the classifier adapts to new classes cheaply"),
    Claim("C21", "Data augmentation", "데이터 증강", "Data augmentation improves generalization to unusual poses"),
    Claim("C22", "Linear classifier templates", "선형 분류기 템플릿", "A linear classifier's weights look like class templates"),
    Claim("C23", "CAM and Grad-CAM", "클래스 활성화 맵", "CAM needs GAP + FC; for such nets Grad-CAM equals CAM"),
    Claim("C24", "Adversarial examples", "적대적 공격", "Small crafted perturbations fool a CNN (adversarial attack)"),
    Claim("C25", "Convolutionalization", "완전 합성곱 네트워크", "Convolutionalization: an FC head equals a conv with full-size kernel, and then runs on any input size"),
    Claim("C26", "RoI / SPP pooling", "RoI 풀링", "RoI/SPP pooling gives a fixed-size output for any region size"),
    Claim("C27", "RPN anchors", "영역 제안 네트워크 (앵커 박스)", "Faster R-CNN's RPN: 9 anchors per location, 2x9 scores + 4x9 deltas"),
    Claim("C28", "YOLO v1 output tensor", "YOLO 출력 텐서", "YOLO v1 output is S x S x (B*5 + C) = 7x7x30"),
    Claim("C29", "ViT patch embedding", "패치 임베딩", "ViT: 224x224x3 -> 196 x 768 tokens, 197 with CLS"),
    Claim("C30", "Positional encoding", "위치 인코딩", "Without positional encoding a transformer is permutation-equivariant"),
    Claim("C31", "Scaling by sqrt(d_k)", "스케일드 닷-프로덕트 어텐션", "Dividing by sqrt(d_k) keeps softmax from saturating as d_k grows"),
    Claim("C32", "Causal mask", "마스크드 어텐션", "A causal mask stops attention to future tokens"),
    Claim("C33", "Multi-head attention", "멀티 헤드 어텐션", "Multi-head: heads attend to different patterns"),
    Claim("C34", "Inductive bias", "귀납적 편향", "Self-attention is global from the first layer; CNN receptive field is local"),
    Claim("C35", "Long-range memory", "장기 의존성", "LSTM/GRU keep long-range information that a vanilla RNN loses"),
    Claim("C36", "GRU vs LSTM parameters", "GRU 파라미터 수", "GRU has fewer parameters than LSTM (3 vs 4 gate blocks)"),
    Claim("C37", "Gradient clipping", "그래디언트 클리핑", "Gradient clipping tames exploding gradients"),
    Claim("C38", "Attention in seq2seq", "어텐션 seq2seq", "Attention helps seq2seq on long sentences"),
    Claim("C39", "Word embeddings", "단어 임베딩", "Similar words get similar vectors; one-hot vectors have no similarity"),
    Claim("C40", "FastText subwords", "FastText 서브워드", "FastText embeds unseen words from character n-grams"),
    Claim("C41", "TF-IDF", "TF-IDF", "TF-IDF up-weights rare, document-specific words"),
    Claim("C42", "Parameters of density models", "밀도 추정", "Binary images of n pixels need 2^n - 1 parameters; independence n; Markov 2n - 1"),
    Claim("C43", "Reparameterization trick", "재매개변수화 트릭", "The reparameterization trick lets gradients reach mu and sigma"),
    Claim("C44", "Autoencoder vs VAE", "오토인코더 vs 변분 오토인코더", "A plain autoencoder is not a generator; a VAE's prior samples are"),
    Claim("C45", "CLIP and zero-shot", "대조 학습 / 제로샷", "CLIP pulls matching image/text pairs together and enables zero-shot classification"),
    Claim("C46", "PCA", "주성분 분석", "PCA components are uncorrelated and ordered by explained variance"),
    Claim("C47", "Pooling loses arrangement", "풀링", "Pooling discards where parts are relative to each other"),
    Claim("C48", "Transposed convolution", "전치 합성곱", "Transposed convolution does not exactly invert downsampling"),
    Claim("C49", "Localization as regression", "위치 추정 (분류 + 회귀)", "Localization = a classification head plus a regression head that learns (x, y, w, h)"),
    Claim("C50", "One CNN pass per image", "Fast R-CNN / YOLO 속도", "One CNN pass per image (SPP / Fast R-CNN) instead of one per region (R-CNN) makes detection much faster; a single-shot grid (YOLO) is faster still"),
    Claim("C51", "Bidirectional RNNs", "양방향 RNN", "A bidirectional RNN beats a unidirectional one when the answer depends on later tokens, but cannot predict the next token causally"),
    Claim("C52", "Self-attention vs recurrence cost", "셀프 어텐션 vs 순환", "Self-attention processes a sequence in one parallel step at O(n^2) cost; an RNN needs n sequential steps (the notes say exponential: it is quadratic)"),
    Claim("C53", "Sinusoidal vs learned positions", "사인파 위치 인코딩", "Sinusoidal positions are defined beyond the training length; learned positions are not"),
    Claim("C54", "Padding mask", "패딩 마스크", "A padding mask makes outputs independent of what sits in the padded positions"),
    Claim("C55", "Soft vs hard attention", "소프트 / 하드 어텐션", "Soft attention is a differentiable weighted average (weights sum to 1); hard attention picks one position and must be trained by sampling"),
    Claim("C56", "Several heads vs one", "멀티 헤드 어텐션", "Multi-head attention captures several relations at once better than one head of the same width, at the same cost"),
    Claim("C57", "Bag of words ignores order", "단어 가방 (BoW)", "Bag of words ignores word order"),
    Claim("C58", "Word analogies", "단어 유추", "Word vectors support analogies (king - man + woman ~ queen)"),
    Claim("C59", "GloVe fits co-occurrence", "GloVe 동시 발생 행렬", "GloVe fits global co-occurrence statistics: w_i . w~_j + b_i + b~_j ~ log X_ij"),
    Claim("C60", "Contextual embeddings", "문맥 임베딩", "Contextual (BERT-style) embeddings give a word different vectors in different contexts; static embeddings give one"),
    Claim("C61", "Perplexity", "난해성 (perplexity)", "Perplexity measures next-token prediction: uniform = vocabulary size; n-gram > RNN > transformer on the same text"),
    Claim("C62", "Pre-training then fine-tuning", "사전 학습 / 미세 조정", "Pre-training on a large corpus then fine-tuning beats training from scratch on a small task"),
    Claim("C63", "Few-shot prompting", "퓨샷 프롬프팅", "Few-shot prompting (examples in the prompt, no weight update) improves a pre-trained LM over zero-shot"),
    Claim("C64", "RLHF", "인간 피드백 강화학습 (RLHF)", "A reward model from pairwise preferences plus policy-gradient fine-tuning with a KL penalty moves an LM toward preferred outputs while staying close to it"),
    Claim("C65", "Flows are exactly invertible", "플로우 모델", "A flow's decoder is the exact inverse of its encoder, and its log-likelihood is exact"),
    Claim("C66", "GAN equilibrium", "생성기/판별기", "A GAN is a game: at equilibrium the discriminator is right half the time (D = 1/2)"),
    Claim("C67", "Diffusion: best samples, slowest", "확산 모델", "Diffusion gives the best samples of the generative families but samples slowest"),
    Claim("C68", "Likelihood in and out of distribution", "분포 밖 데이터의 우도", "An explicit-density model gives in-distribution data a higher likelihood than other data"),
    Claim("C69", "The ELBO gap is a KL", "ELBO와 KL 발산", "log p(x) - ELBO = KL(q(z|x) || p(z|x)) >= 0"),
    Claim("C70", "More data, lower variance", "최대 우도 추정의 분산", "More data gives a lower-variance maximum-likelihood estimate (about 1/N)"),
    Claim("C71", "Zero-shot vs few-shot probes", "제로샷 / 퓨샷", "Zero-shot (prompts, no labelled examples) vs few-shot (a linear probe on a few labels) on the same CLIP features"),
    Claim("C72", "Feature hierarchy", "특징 계층", "First-layer filters are edge/colour detectors; deeper units see larger regions and respond to class-specific patterns"),
    Claim("C73", "ViT needs more data", "귀납적 편향과 데이터 양", "A ViT needs more data than a CNN (weaker inductive bias)"),
    Claim("C74", "Dropout reduces overfitting", "드롭아웃과 과적합", "Dropout reduces overfitting"),
    Claim("C75", "DenseNet grows linearly", "DenseNet 성장률", "DenseNet's channels grow linearly with depth (k0 + l*k), not exponentially; bottlenecks and transitions cut the parameters"),
    Claim("C76", "ResNets as ensembles of paths", "잔차 네트워크 (경로의 앙상블)", "A ResNet behaves like an ensemble of paths: removing one block barely hurts it, but breaks a plain net"),
    Claim("C77", "Class imbalance in segmentation", "클래스 불균형", "Under class imbalance pixel accuracy looks high while foreground IoU/Dice is low; a weighted or Dice loss fixes it"),
    Claim("C78", "Equivariance and invariance", "이동 불변성 / 등변성", "Convolution is translation-equivariant, pooling only locally invariant, and a CNN is not rotation-invariant"),
    Claim("C79", "CNN vs MLP generalization", "CNN vs MLP", "A CNN generalizes better than an MLP of comparable size, especially to shifted images"),
    Claim("C80", "VGG's parameters sit in its FC layers", "VGG 파라미터", "Most of VGG-16's parameters are in its FC layers; a GAP head removes them at little cost"),
    Claim("C81", "AdaGrad favours rare features", "AdaGrad 희소 특징", "AdaGrad gives rarely-updated parameters larger steps"),
    Claim("C82", "Same padding", "패딩", "'Same' padding p = (f - 1)/2 keeps the map size; without padding border pixels are seen less"),
    Claim("C83", "Early stopping", "조기 종료", "Early stopping: validation loss turns up while training loss keeps falling"),
    # Beyond the notes' own list: their ViT part ends with "ViT evolved into Swin and PVT" (issue 24).
    Claim("C84", "Swin and PVT cost less than ViT", "Swin / PVT 어텐션 비용", "ViT's attention cost grows with the square of the token count; Swin's windows make it linear, PVT's spatial reduction sits between"),
    Claim("C85", "Locality helps at a fixed budget", "지역성 (Swin vs ViT vs CNN)", "At the same training budget a windowed transformer (Swin) beats a ViT and nears a CNN of similar size"),
)}  # fmt: skip
