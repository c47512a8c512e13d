"""Class lists of the synthetic dataset: 65 HDM05, 60 NTU60 and 120 NTU120 actions, in the real datasets' order.

Names and indices are those of the real datasets (HDM05: the 65-class protocol, alphabetical; NTU RGB+D 60 /
120: the official action list, label = action number - 1), so a label means the same action in the synthetic
and the real files. Each class is written in the track language of ``tasar_jax.data.motions``; ``~name`` is
the time reverse of class ``name``. Families whose members share their per-joint statistics and differ only in
time or coordination are built in on purpose:

- time reverses: sit down / stand up (chair, floor, table, kneel), lie down / stand up, grab / deposit (four
  heights), rotate arms forwards / backwards, walk forwards / backwards, walk left / right, put on / take off
  (jacket, shoe, glasses, hat, headphones, bag), pick up / drop, put into / take out of a bag, walking towards /
  apart; and, by their root motion only hidden by the clip centring, stairs up / down;
- count and rhythm: drink (one rep) / eat (three), sneeze (one jerk) / nausea (three), wipe face / apply cream /
  fan (2, 4, 6 strokes), reading / writing (2 vs 6 taps), jog / run on the spot and circles (cadence);
- coordination: clapping (in phase) / rubbing hands (anti-phase), playing with a phone / typing, arm circles /
  arm swings;
- limb: left / right kicks, punches, hops, arm rotations, circles and turns;
- order in two-person actions: giving (one after the other) / exchanging (at the same time).

NTU two-person (mutual) actions: 11 of 60 (labels 49-59) and 26 of 120 (also 105-119); both persons move.
"""

from __future__ import annotations

_GRAB = "R {pose} touch@0-0.6; R chest touch@0.45-1"
_THROW = "{s} wind_up touch@0-0.7; {s} throw pulse1@0.5-0.8"
_UNDERHAND = "R back touch@0-0.6; R front_low pulse1@0.45-0.8"
_ROTATE = "{s} side touch; {s} circle_x osc1@0.2-0.8; {s} circle_z osc1q@0.2-0.8"

HDM05: tuple[tuple[str, str], ...] = (
    ("cartwheelLHandStart1Reps", "B up touch; B leg_spread touch; R cartwheel go@0.2-0.8"),
    ("clap1Reps", "B arms_front touch; B clap rep1@0.3-0.7"),
    ("clapAboveHead1Reps", "B up touch; B wag rep1@0.3-0.7"),
    ("depositFloorR", "~grabFloorR"),
    ("depositHighR", "~grabHighR"),
    ("depositLowR", "~grabLowR"),
    ("depositMiddleR", "~grabMiddleR"),
    ("elbowToKnee1RepsLelbowStart", "B guard touch; C twist osc1; R knee_up rep1@0-0.5; L knee_up rep1@0.5-1"),
    ("grabFloorR", "C bend touch@0-0.6; " + _GRAB.format(pose="floor")),
    ("grabHighR", _GRAB.format(pose="high")),
    ("grabLowR", "C bow touch@0-0.6; " + _GRAB.format(pose="front_low")),
    ("grabMiddleR", _GRAB.format(pose="front")),
    ("hitRHandHead", "R head pulse1@0.2-0.8"),
    ("hopBothLegs1hops", "C crouch pulse1@0.1-0.4; C hop rep1@0.35-0.65; C crouch pulse1@0.6-0.9"),
    ("hopLLeg1hops", "R knee_up touch; C hop rep1@0.3-0.7"),
    ("hopRLeg1hops", "L knee_up touch; C hop rep1@0.3-0.7"),
    ("jogLeftCircle4StepsRstart", "A stride osc4; R circle go"),
    ("jogOnPlaceStartAir2StepsLStart", "A stride osc2; C hop rep4; B guard touch"),
    ("jogRightCircle4StepsRstart", "A stride osc4; L circle go"),
    ("jumpDown", "C step_down go@0.3-0.6; C crouch touch@0.45-0.95"),
    ("jumpingJack1Reps", "B up rep1; B leg_spread rep1; C hop rep2"),
    ("kickLFront1Reps", "B guard touch; L kick_front pulse1@0.3-0.7"),
    ("kickLSide1Reps", "B guard touch; L kick_side pulse1@0.3-0.7"),
    ("kickRFront1Reps", "B guard touch; R kick_front pulse1@0.3-0.7"),
    ("kickRSide1Reps", "B guard touch; R kick_side pulse1@0.3-0.7"),
    ("lieDownFloor", "C sit_floor touch; C lie go@0.45-1"),
    ("punchLFront1Reps", "B guard touch; L punch pulse1@0.3-0.7"),
    ("punchLSide1Reps", "B guard touch; L punch_side pulse1@0.3-0.7"),
    ("punchRFront1Reps", "B guard touch; R punch pulse1@0.3-0.7"),
    ("punchRSide1Reps", "B guard touch; R punch_side pulse1@0.3-0.7"),
    ("rotateArmsBothBackward1Reps", "~rotateArmsBothForward1Reps"),
    ("rotateArmsBothForward1Reps", _ROTATE.format(s="B")),
    ("rotateArmsLBackward1Reps", "~rotateArmsLForward1Reps"),
    ("rotateArmsLForward1Reps", _ROTATE.format(s="L")),
    ("rotateArmsRBackward1Reps", "~rotateArmsRForward1Reps"),
    ("rotateArmsRForward1Reps", _ROTATE.format(s="R")),
    ("runOnPlaceStartAir2StepsLStart", "A stride osc3; C hop rep6; B guard touch"),
    ("shuffle2StepsLStart", "A side_step rep2; R leftward go"),
    ("sitDownChair", "C chair go@0.1-0.8; C bow touch@0.1-0.8"),
    ("sitDownFloor", "C sit_floor go@0.1-0.8; C bow touch@0.1-0.6"),
    ("sitDownKneelTieShoes", "C tie_shoes go@0.2-0.8; B scrub osc2@0.2-0.8"),
    ("sitDownTable", "C chair go@0.1-0.7; B desk go@0.5-0.9"),
    ("skier1RepsLstart", "C crouch hold; A swing osc1; C sway osc1"),
    ("squat1Reps", "C squat rep1; B arms_front rep1"),
    ("staircaseDown3Rstart", "A stamp rep2; C descend go"),
    ("staircaseUp3Rstart", "A stamp rep2; C step_up go"),
    ("standUpKneelToStand", "~sitDownKneelTieShoes"),
    ("standUpLieFloor", "~lieDownFloor"),
    ("standUpSitChair", "~sitDownChair"),
    ("standUpSitFloor", "~sitDownFloor"),
    ("standUpSitTable", "~sitDownTable"),
    ("throwBasketball", _THROW.format(s="B")),
    ("throwFarR", _THROW.format(s="R") + "; C bow pulse1@0.5-0.8"),
    ("throwSittingHighR", "C chair hold; " + _THROW.format(s="R")),
    ("throwSittingLowR", "C chair hold; " + _UNDERHAND),
    ("throwStandingHighR", _THROW.format(s="R")),
    ("throwStandingLowR", _UNDERHAND),
    ("turnLeft", "R turn go; A stride rep1"),
    ("turnRight", "L turn go; A stride rep1"),
    ("walk2StepsLstart", "A stride osc1; C forward go"),
    ("walkBackwards2StepsRstart", "~walk2StepsLstart"),
    ("walkLeft2StepsRstart", "A side_step rep1; R leftward go"),
    ("walkLeftCircle4StepsRstart", "A stride osc2; R circle go"),
    ("walkRight2StepsLstart", "~walkLeft2StepsRstart"),
    ("walkRightCircle4StepsRstart", "A stride osc2; L circle go"),
)

_DESK = "B desk hold; C look_down hold; "
_ON = "{s} {pose} touch@0-0.7; C nod rep1@0.55-0.95"
_HIT = "2C recoil pulse1@0.4-0.7"

NTU60: tuple[tuple[str, str], ...] = (
    ("drink water", "R mouth rep1"),
    ("eat meal/snack", "R mouth rep3"),
    ("brushing teeth", "R mouth touch; R scrub osc6@0.25-0.75"),
    ("brushing hair", "R head touch; R scrub osc4@0.25-0.75"),
    ("drop", "~pickup"),
    ("pickup", "C bend touch@0-0.6; " + _GRAB.format(pose="floor")),
    ("throw", _THROW.format(s="R")),
    ("sitting down", "C chair go@0.1-0.8; C bow touch@0.1-0.8"),
    ("standing up (from sitting position)", "~sitting down"),
    ("clapping", "B arms_front touch; B clap osc4@0.2-0.8"),
    ("reading", _DESK + "R tap osc2"),
    ("writing", _DESK + "R tap osc6"),
    ("tear up paper", "B chest touch; B scrub pulse2@0.3-0.8"),
    ("wear jacket", "R sleeve touch@0-0.55; L sleeve touch@0.45-1; C twist osc1"),
    ("take off jacket", "~wear jacket"),
    ("wear a shoe", "C tie_shoes touch; B tap saw2@0.25-0.75"),
    ("take off a shoe", "~wear a shoe"),
    ("wear on glasses", _ON.format(s="B", pose="eyes")),
    ("take off glasses", "~wear on glasses"),
    ("put on a hat/cap", _ON.format(s="R", pose="head")),
    ("take off a hat/cap", "~put on a hat/cap"),
    ("cheer up", "B up rep2"),
    ("hand waving", "R wave_up touch; R wag osc3@0.25-0.75"),
    ("kicking something", "R kick_front pulse1@0.3-0.7"),
    ("reach into pocket", "R pocket touch"),
    ("hopping (one foot jumping)", "R knee_up touch; C hop rep3@0.2-0.8"),
    ("jump up", "C crouch pulse1@0.1-0.4; C jump rep1@0.35-0.65; C crouch pulse1@0.6-0.9"),
    ("make a phone call/answer phone", "R ear touch"),
    ("playing with phone/tablet", _DESK + "B tap osc4"),
    ("typing on a keyboard", _DESK + "A tap osc4"),
    ("pointing to something with finger", "R point touch"),
    ("taking a selfie", "R front_mid touch; C lean_side osc1"),
    ("check time (from watch)", "L desk touch; C look_down touch"),
    ("rub two hands together", "B arms_front touch; A clap osc4@0.2-0.8"),
    ("nod head/bow", "C nod rep2"),
    ("shake head", "C head_shake osc2"),
    ("wipe face", "R face touch; R fan osc2@0.25-0.75"),
    ("salute", "R forehead touch"),
    ("put the palms together", "B chest touch; B clap touch"),
    ("cross hands in front (say stop)", "B cross touch"),
    ("sneeze/cough", "R mouth touch; C jerk pulse1@0.3-0.7"),
    ("staggering", "C sway osc2; A stride osc2; C lean_side osc2"),
    ("falling", "C fall go@0.3-0.8"),
    ("touch head (headache)", "B head touch"),
    ("touch chest (stomachache/heart pain)", "B chest touch; C bow touch"),
    ("touch back (backache)", "R back touch; C lean_back touch"),
    ("touch neck (neckache)", "R neck touch; C head_shake osc1"),
    ("nausea or vomiting condition", "R mouth touch; C jerk pulse3@0.3-0.7"),
    ("use a fan (with hand or paper)/feeling warm", "R face touch; R fan osc6@0.25-0.75"),
    # mutual actions
    ("punching/slapping other person", "B guard touch; R punch pulse1@0.3-0.6; " + _HIT),
    ("kicking other person", "R kick_front pulse1@0.3-0.6; " + _HIT),
    ("pushing other person", "B arms_front pulse1@0.3-0.6; 2C recoil rep1@0.35-0.8"),
    ("pat on back of other person", "R hug touch; R wag osc3@0.3-0.7; 2C nod rep1@0.3-0.7"),
    ("point finger at the other person", "R point touch; 2C lean_back touch@0.3-1"),
    ("hugging other person", "B hug touch; 2B hug touch; C approach touch; 2C approach touch"),
    ("giving something to other person", "R front touch@0-0.6; 2R front touch@0.3-0.9"),
    ("touch other person's pocket", "R front_low touch@0.2-0.8; 2C lean_back touch@0.4-1"),
    ("handshaking", "R front_mid touch; 2R front_mid touch; R wag osc3@0.3-0.7; 2R wag osc3@0.3-0.7"),
    ("walking towards each other", "A stride osc1; C approach go; 2A stride osc1; 2C approach go"),
    ("walking apart from each other", "~walking towards each other"),
)

NTU120: tuple[tuple[str, str], ...] = NTU60 + (
    ("put on headphone", _ON.format(s="B", pose="ear")),
    ("take off headphone", "~put on headphone"),
    ("shoot at the basket", _THROW.format(s="B") + "; C hop rep1@0.45-0.85"),
    ("bounce ball", "C crouch touch; R front_low touch; R tap rep3@0.2-0.8"),
    ("tennis bat swing", "R side touch@0-0.5; R swing pulse1@0.4-0.8; C twist pulse1@0.4-0.8"),
    ("juggling table tennis balls", "B desk touch; A tap rep4@0.2-0.8"),
    ("hush (quite)", "R mouth touch; C nod touch"),
    ("flick hair", "R ear pulse1@0.3-0.7; C head_shake pulse1@0.3-0.7"),
    ("thumb up", "R thumb_up touch"),
    ("thumb down", "R thumb_down touch"),
    ("make ok sign", "R front_mid touch; R fist touch"),
    ("make victory sign", "R wave_up touch; R fist touch"),
    ("staple book", "B desk touch; R tap pulse2@0.3-0.7"),
    ("counting money", "B desk hold; R tap rep5"),
    ("cutting nails", _DESK + "R tap osc4@0.2-0.8"),
    ("cutting paper (using scissors)", "B chest touch; R tap rep4@0.2-0.8"),
    ("snapping fingers", "R front_mid touch; R tap pulse3@0.2-0.8"),
    ("open bottle", "B desk touch; R scrub saw3@0.25-0.75"),
    ("sniff (smell)", "R face touch; C jerk rep2@0.3-0.7"),
    ("squat down", "C squat touch"),
    ("toss a coin", "R front_mid touch; R lift_arm pulse1@0.4-0.6; C look_down pulse1@0.45-0.8"),
    ("fold paper", "B desk touch; B clap rep2@0.2-0.8"),
    ("ball up paper", "B chest touch; A scrub osc4@0.2-0.8"),
    ("play magic cube", "B chest hold; A tap osc5"),
    ("apply cream on face", "R face touch; R fan osc4@0.25-0.75"),
    ("apply cream on hand back", "B desk hold; R scrub osc4"),
    ("put on bag", "R lift_arm touch@0-0.6; R side touch@0.4-1"),
    ("take off bag", "~put on bag"),
    ("put something into a bag", "L front_low hold; R chest touch@0-0.6; R front_low touch@0.4-1"),
    ("take something out of a bag", "~put something into a bag"),
    ("open a box", "B desk touch; B lift_arm rep1@0.3-0.7"),
    ("move heavy objects", "C crouch touch; B arms_front touch; R leftward go"),
    ("shake fist", "R guard touch; R wag osc4@0.2-0.8"),
    ("throw up cap/hat", "R head touch@0-0.5; R up pulse1@0.4-0.8"),
    ("hands up (both hands)", "B up touch"),
    ("cross arms", "B cross touch; C lean_back touch"),
    ("arm circles", _ROTATE.format(s="B").replace("osc1", "osc3").replace("@0.2-0.8", "@0.1-0.9")),
    ("arm swings", "A swing osc3"),
    ("running on the spot", "A run_stride osc3; C hop rep6; B guard touch"),
    ("butt kicks (kick backward)", "A kick_back rep2"),
    ("cross toe touch", "C bend rep2; A floor rep1"),
    ("side kick", "R kick_side pulse1@0.3-0.7"),
    ("yawn", "C yawn touch; R mouth touch"),
    ("stretch oneself", "B up touch; C lean_back touch"),
    ("blow nose", "B face touch; C jerk rep1@0.4-0.7"),
    # mutual actions
    ("hit other person with something", "R wind_up touch@0-0.7; R strike pulse1@0.5-0.8; 2C recoil pulse1@0.6-0.9"),
    ("wield knife towards other person", "R guard touch; R punch rep2@0.2-0.8; 2C recoil rep2@0.25-0.85"),
    ("knock over other person (hit with body)", "C approach pulse1@0.3-0.6; C bow pulse1@0.3-0.6; 2C fall go@0.5-0.9"),
    ("grab other person's stuff", "R front touch@0.1-0.6; R chest touch@0.5-0.95; 2R front touch@0-0.6"),
    ("shoot at other person with a gun", "R point touch; R lift_arm pulse1@0.5-0.6; 2B up go@0.5-0.8"),
    ("step on foot", "R stamp pulse1@0.3-0.6; 2R knee_up pulse1@0.45-0.75"),
    ("high-five", "R up rep1; 2R up rep1"),
    ("cheers and drink", "R front_mid touch@0-0.5; R mouth touch@0.45-1; 2R front_mid touch@0-0.5; "
                         "2R mouth touch@0.45-1"),
    ("carry something with other person", "B arms_front hold; 2B arms_front hold; R leftward go; 2L leftward go"),
    ("take a photo of other person", "B eyes touch; 2R wave_up touch"),
    ("follow other person", "A stride osc2; C forward go; 2A stride osc2; 2C forward go"),
    ("whisper in other person's ear", "C approach touch; C bow touch; R face touch; 2C lean_side touch"),
    ("exchange things with other person", "R front touch@0.2-0.8; 2R front touch@0.2-0.8"),
    ("support somebody with hand", "R hug touch; 2C lean_side touch; 2A stride osc1"),
    ("finger-guessing game (playing rock-paper-scissors)", "R front_mid touch; R lift_arm rep3@0.2-0.7; "
                                                            "2R front_mid touch; 2R lift_arm rep3@0.2-0.7"),
)

CLASSES = {"hdm05": HDM05, "ntu60": NTU60, "ntu120": NTU120}
# Two-person actions whose partner faces the same way as the first person (behind them) instead of facing them.
SAME_FACING = frozenset({"follow other person"})
