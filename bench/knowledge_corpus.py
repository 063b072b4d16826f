"""A large knowledge base of our own for the scale bench: articles shaped like a city's guides
(its districts' departments × the matters they handle × the kinds of article), made up, no
download, the same for the same seed.

    .venv/bin/python bench/knowledge_corpus.py 100000 /tmp/kb-100k.jsonl   # articles, import format
    .venv/bin/python bench/knowledge_corpus.py 100000 -                    # to stdout

Each district (青山区, 东湖区, …) has the same departments (区市场监管局, 区人社局, …); each
department handles its matters (an object and what is done with it: 社会保障卡 × 申领, 补领,
换领, 挂失; 食品经营许可证 × 核发, 延续, 变更, 补办, 注销); each matter of each district has a
guide (办事指南), its questions (常见问题), and, for some, notices (通知公告) and policies
(政策法规). Bodies are Markdown with the guides' sections (办理条件, 所需材料, 办理流程, 办理时限,
收费标准, 咨询电话), drawn from pools by a seeded random generator. `queries()` gives callers'
questions about the same matters, for timing searches.
"""

import json
import random
import sys
from collections.abc import Iterator
from typing import Any

SEED = 12345
FIRST = "青东西南北金银松柳桃梅兰江河湖山石云星月"
SECOND = "山湖城岭塘水滩溪林港"

# What is done with each type of object: (action, the caller's word for it).
ACTIONS = {
    "licence": [("核发", "办"), ("延续", "到期续"), ("变更", "改"), ("补办", "丢了补"), ("注销", "不干了注销")],
    "card": [("申领", "办"), ("补领", "丢了补办"), ("换领", "换新的"), ("挂失", "丢了挂失")],
    "benefit": [("申请", "申请"), ("资格认定", "认定"), ("待遇发放", "什么时候发"), ("标准", "能领多少")],
    "complaint": [("投诉举报", "投诉"), ("处理流程", "找谁管"), ("受理范围", "管不管")],
    "service": [("办理", "办"), ("变更", "改"), ("查询", "查"), ("预约", "预约")],
}
# department: (category, [(object, type)])
DEPARTMENTS = {
    "市场监管局": (
        "市场主体",
        [
            ("有限责任公司登记", "licence"),
            ("个体工商户登记", "licence"),
            ("食品经营许可证", "licence"),
            ("营业执照", "card"),
            ("食品摊贩登记卡", "card"),
            ("药品经营许可证", "licence"),
            ("消费者权益", "complaint"),
            ("食品安全", "complaint"),
            ("特种设备使用登记", "licence"),
        ],
    ),
    "人社局": (
        "社会保障",
        [
            ("社会保障卡", "card"),
            ("职工基本养老保险", "service"),
            ("城乡居民养老保险", "service"),
            ("失业保险金", "benefit"),
            ("工伤认定", "benefit"),
            ("职业技能培训补贴", "benefit"),
            ("拖欠工资", "complaint"),
            ("劳动人事争议仲裁", "service"),
            ("创业担保贷款", "benefit"),
        ],
    ),
    "医保局": (
        "医疗保障",
        [
            ("城乡居民医保", "service"),
            ("异地就医备案", "service"),
            ("门诊慢特病", "benefit"),
            ("生育津贴", "benefit"),
            ("医疗费用报销", "benefit"),
            ("医保电子凭证", "card"),
        ],
    ),
    "公积金中心": (
        "住房保障",
        [("住房公积金提取", "service"), ("住房公积金贷款", "service"), ("住房公积金缴存", "service")],
    ),
    "公安分局": (
        "户籍管理",
        [
            ("居民身份证", "card"),
            ("居住证", "card"),
            ("户口迁移", "service"),
            ("出生登记", "service"),
            ("无犯罪记录证明", "card"),
            ("普通护照", "card"),
            ("往来港澳通行证", "card"),
            ("养犬登记", "licence"),
            ("机动车驾驶证", "card"),
            ("电动自行车登记", "service"),
        ],
    ),
    "民政局": (
        "民政服务",
        [
            ("结婚登记", "service"),
            ("离婚登记", "service"),
            ("最低生活保障", "benefit"),
            ("特困人员救助供养", "benefit"),
            ("临时救助", "benefit"),
            ("高龄津贴", "benefit"),
            ("老年人优待证", "card"),
            ("殡葬补贴", "benefit"),
        ],
    ),
    "住建局": (
        "住房城乡建设",
        [
            ("物业服务", "complaint"),
            ("住宅专项维修资金", "service"),
            ("公共租赁住房", "benefit"),
            ("既有住宅加装电梯", "benefit"),
            ("建筑工程施工许可", "licence"),
        ],
    ),
    "不动产登记中心": (
        "不动产",
        [
            ("不动产转移登记", "service"),
            ("不动产抵押登记", "service"),
            ("不动产权证书", "card"),
            ("不动产登记资料", "service"),
        ],
    ),
    "城管局": (
        "城市管理",
        [
            ("占道经营", "complaint"),
            ("违法建设", "complaint"),
            ("户外广告设置", "licence"),
            ("树木修剪", "service"),
            ("生活垃圾分类", "complaint"),
            ("大件垃圾清运", "service"),
            ("市政设施", "complaint"),
        ],
    ),
    "生态环境局": (
        "生态环境",
        [
            ("社会生活噪声", "complaint"),
            ("建筑施工噪声", "complaint"),
            ("餐饮油烟", "complaint"),
            ("排污许可", "licence"),
        ],
    ),
    "教育局": (
        "教育",
        [
            ("小学入学", "service"),
            ("初中入学", "service"),
            ("幼儿园入园", "service"),
            ("转学", "service"),
            ("学生资助", "benefit"),
            ("校外培训机构", "complaint"),
            ("教师资格认定", "licence"),
        ],
    ),
    "税务局": (
        "税务",
        [
            ("个人所得税汇算", "service"),
            ("发票领用", "service"),
            ("契税申报", "service"),
            ("税务登记", "licence"),
            ("小规模纳税人优惠", "benefit"),
        ],
    ),
    "卫健委": (
        "卫生健康",
        [
            ("出生医学证明", "card"),
            ("预防接种", "service"),
            ("家庭医生签约", "service"),
            ("医疗纠纷", "complaint"),
            ("育儿补贴", "benefit"),
            ("医师执业注册", "licence"),
        ],
    ),
    "残联": ("残疾人服务", [("残疾人证", "card"), ("残疾人两项补贴", "benefit"), ("残疾人就业", "service")]),
    "退役军人事务局": ("退役军人", [("退役军人优待证", "card"), ("退役士兵安置", "benefit")]),
    "司法局": ("法律服务", [("法律援助", "benefit"), ("人民调解", "service"), ("公证", "service")]),
    "交通运输局": (
        "交通出行",
        [("出租车网约车", "complaint"), ("公交线路", "service"), ("道路运输经营许可", "licence")],
    ),
    "水务局": ("公用事业", [("供水报修", "complaint"), ("用水开户", "service"), ("水费", "service")]),
    "燃气公司": ("公用事业", [("管道燃气开户", "service"), ("燃气报修", "complaint")]),
}
MATERIALS = [
    "申请人有效身份证件原件及复印件",
    "申请表（窗口领取或网上下载）",
    "近期一寸免冠照片两张",
    "户口簿原件",
    "居住证明或房屋租赁合同",
    "营业执照副本",
    "法定代表人身份证明",
    "相关费用票据原件",
    "银行账户信息",
    "委托他人办理的，提交授权委托书及受托人身份证件",
    "医疗机构出具的诊断证明",
    "劳动合同或单位证明",
    "不动产权证书",
    "婚姻状况证明",
    "其他需要提交的材料（以窗口告知为准）",
]
STEPS = [
    "通过“一网通办”平台或手机应用在线提交申请",
    "到区政务服务中心综合窗口提交材料",
    "窗口受理并审核材料",
    "材料不全的，一次性告知需补正的内容",
    "部门审查，必要时现场核查",
    "作出决定并通知申请人",
    "申请人到窗口领取或选择邮寄送达",
]
FEES = ["不收费。", "免费。", "按国家规定标准收取工本费，不另收其他费用。", "不收取任何费用。"]


def districts(count: int) -> list[str]:
    names = [a + b + "区" for a in FIRST for b in SECOND]
    random.Random(SEED).shuffle(names)
    return names[:count]


def matters() -> list[tuple[str, str, str, str, str]]:
    """(department, category, object, action, the caller's word for the action)."""
    out = []
    for dept, (category, objects) in DEPARTMENTS.items():
        for obj, kind in objects:
            for action, plain in ACTIONS[kind]:
                out.append((dept, category, obj, action, plain))
    return out


def _body(rng: random.Random, district: str, dept: str, obj: str, action: str, kind: str) -> str:
    phone = f"{rng.randint(8000, 8999)} {rng.randint(1000, 9999)}"
    days = rng.choice([1, 3, 5, 7, 10, 15, 20, 30])
    if kind == "常见问题":
        qa = [
            f"**问：{obj}{action}可以在网上办吗？**\n\n答：可以。登录“一网通办”平台，选择“{obj}{action}”，"
            f"按提示上传材料；也可到{district}政务服务中心窗口办理。",
            f"**问：{obj}{action}需要多长时间？**\n\n答：材料齐全的，{days}个工作日内办结。",
            f"**问：委托别人代办{obj}{action}可以吗？**\n\n答：可以，受托人需携带授权委托书和双方身份证件。",
            f"**问：{obj}{action}收费吗？**\n\n答：{rng.choice(FEES)}",
        ]
        rng.shuffle(qa)
        return "\n\n".join(qa[:3]) + f"\n\n**咨询电话**：{district}{dept} {phone}，或拨打12345。"
    if kind == "通知公告":
        return (
            f"为进一步优化营商环境、方便群众办事，自{rng.randint(2024, 2026)}年{rng.randint(1, 12)}月起，"
            f"{district}{dept}对{obj}{action}事项作如下调整：\n\n"
            f"1. 办理时限由{days + 5}个工作日压缩至{days}个工作日；\n"
            f"2. {rng.choice(MATERIALS)}不再要求提供，改由部门内部核验；\n"
            f"3. 增设“一网通办”线上办理渠道，实现全程网办。\n\n"
            f"特此公告。咨询电话：{phone}。"
        )
    if kind == "政策法规":
        return (
            f"根据有关法律法规和上级部门规定，现将{district}{obj}{action}有关政策要点解读如下：\n\n"
            f"- **适用对象**：在本区{rng.choice(['户籍', '居住', '经营', '参保'])}的个人或单位。\n"
            f"- **主要内容**：符合条件的，可依法申请{obj}{action}；不符合条件的，窗口一次性告知原因。\n"
            f"- **办理部门**：{district}{dept}。\n"
            f"- **监督电话**：{phone}。"
        )
    materials = rng.sample(MATERIALS, rng.randint(3, 6))
    steps = rng.sample(STEPS, rng.randint(3, 5))
    return (
        f"**办理条件**：符合{obj}{action}相关规定、在{district}"
        f"{rng.choice(['户籍', '居住', '注册', '参保', '工作'])}的申请人，可申请办理。\n\n"
        "**所需材料**\n\n" + "\n".join(f"{i}. {m}" for i, m in enumerate(materials, 1)) + "\n\n"
        "**办理流程**\n\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1)) + "\n\n"
        f"**办理时限**：材料齐全、符合法定形式的，{days}个工作日内办结。\n\n"
        f"**收费标准**：{rng.choice(FEES)}\n\n"
        f"**办理地点**：{district}政务服务中心{rng.randint(1, 3)}楼{rng.randint(1, 40)}号窗口。\n\n"
        f"**咨询电话**：{district}{dept} {phone}，或拨打12345。"
    )


def articles(count: int, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """`count` articles in the import format of `hotline knowledge import`."""
    rng = random.Random(seed)
    all_matters = matters()
    kinds = ["办事指南", "常见问题", "通知公告", "政策法规"]
    per_district = len(all_matters) * len(kinds)
    n = 0
    for district in districts(-(-count // per_district)):
        for kind in kinds:
            for dept, category, obj, action, plain in all_matters:
                if n == count:
                    return
                n += 1
                title = {
                    "办事指南": f"{obj}{action}办事指南",
                    "常见问题": f"{obj}{action}常见问题解答",
                    "通知公告": f"关于调整{obj}{action}办理事项的公告",
                    "政策法规": f"{obj}{action}政策要点解读",
                }[kind]
                keywords = list(dict.fromkeys([f"{obj}{action}", obj, f"{plain}{obj}"[:20], f"{district}{action}"]))
                valid_from = f"{rng.randint(2023, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                yield {
                    "external_id": f"GEN-{n:06d}",
                    "title": title,
                    "body": _body(rng, district, dept, obj, action, kind),
                    "category": f"{category}/{obj}",
                    "keywords": [k for k in keywords if k != title],
                    "department": f"{district}{dept}",
                    "kind": kind,
                    "region": district,
                    "valid_from": valid_from,
                    "valid_until": None if rng.random() < 0.8 else f"{rng.randint(2027, 2030)}-12-31",
                    "public": rng.random() < 0.95,
                    "status": "published" if rng.random() < 0.9 else "draft",
                }


def queries(count: int, seed: int = SEED) -> list[str]:
    """Callers' questions about the generated matters, as plain as callers put them."""
    rng = random.Random(seed + 1)
    forms = [
        "{obj}{plain}要带什么材料",
        "{obj}{plain}去哪里办",
        "我想{plain}{obj}，怎么弄",
        "{district}{obj}{action}要多久",
        "{obj}{action}收不收费",
        "{obj}能不能网上{plain}",
        "请问{obj}{action}的电话是多少",
    ]
    all_matters = matters()
    names = districts(40)
    out = []
    for _ in range(count):
        _, _, obj, action, plain = rng.choice(all_matters)
        out.append(rng.choice(forms).format(obj=obj, action=action, plain=plain, district=rng.choice(names)))
    return out


def main(argv: list[str] | None = None) -> int:
    args = (argv if argv is not None else sys.argv[1:]) or ["1000", "-"]
    count, path = int(args[0]), args[1] if len(args) > 1 else "-"
    out = sys.stdout if path == "-" else open(path, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for article in articles(count):
            out.write(json.dumps(article, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
